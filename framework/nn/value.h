// Value: what a module's forward takes and returns — a tensor, a list of values, or a
// string-keyed dict (insertion ordered), mirroring what NNI's wrapper accepts from PyTorch.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "framework/core/tensor.h"

namespace shrink::nn {

class Value {
 public:
  enum class Kind { None, Tensor, List, Dict };
  using List = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(shrink::Tensor t) : kind_(Kind::Tensor), tensor_(std::move(t)) {}  // NOLINT: implicit
  static Value list(List items) {
    Value v;
    v.kind_ = Kind::List;
    v.list_ = std::move(items);
    return v;
  }
  static Value dict(Dict items) {
    Value v;
    v.kind_ = Kind::Dict;
    v.dict_ = std::move(items);
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_tensor() const { return kind_ == Kind::Tensor; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_dict() const { return kind_ == Kind::Dict; }

  const shrink::Tensor& tensor() const {
    SHRINK_CHECK(is_tensor(), "Value: expected a tensor, got ", kind_name());
    return tensor_;
  }
  const List& items() const {
    SHRINK_CHECK(is_list(), "Value: expected a list, got ", kind_name());
    return list_;
  }
  List& items() {
    SHRINK_CHECK(is_list(), "Value: expected a list, got ", kind_name());
    return list_;
  }
  const Dict& entries() const {
    SHRINK_CHECK(is_dict(), "Value: expected a dict, got ", kind_name());
    return dict_;
  }
  Dict& entries() {
    SHRINK_CHECK(is_dict(), "Value: expected a dict, got ", kind_name());
    return dict_;
  }
  // Dict lookup by key (throws naming the available keys).
  const Value& at(const std::string& key) const;
  bool contains(const std::string& key) const;

  const char* kind_name() const;

 private:
  Kind kind_ = Kind::None;
  shrink::Tensor tensor_;
  List list_;
  Dict dict_;
};

}  // namespace shrink::nn
