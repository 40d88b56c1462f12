// Batches a Dataset for training and evaluation, with a per-epoch shuffle that is reproducible
// from (seed, epoch) alone so a run resumed at epoch e sees the same order as an unbroken run.
#pragma once
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "framework/data/dataset.h"

namespace shrink::data {

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, int64_t batch_size, bool shuffle,
             uint64_t seed, bool drop_last = false);

  // Batches per epoch: a short final batch counts unless drop_last (or, when sharded, it has
  // fewer samples than there are shards, so that some shard would be empty).
  int64_t num_batches() const;
  // Data parallelism: every shard visits the same global order and batches of batch_size, and
  // takes its contiguous part of each, samples [b*shard/shards, b*(shard+1)/shards) of a batch of
  // b. Together the shards see exactly what one unsharded loader with the same seed sees.
  void set_shard(int shard, int shards);
  int shard() const { return shard_; }
  int shards() const { return shards_; }
  int64_t batch_size() const { return batch_size_; }
  bool drop_last() const { return drop_last_; }
  const Dataset& dataset() const { return *dataset_; }

  // Begins the next epoch (0 on the first call) and rewinds to its first batch.
  void start_epoch();
  // Begins epoch `epoch` directly, e.g. when resuming from a checkpoint.
  void start_epoch(int64_t epoch);
  // The epoch in progress, or -1 before any has started.
  int64_t epoch() const { return epoch_; }
  // This epoch's visiting order (the identity when not shuffling).
  const std::vector<int64_t>& order() const { return order_; }

  // Fills `out` with the epoch's next batch; false once the epoch is exhausted (and from then
  // on until start_epoch). Starts epoch 0 if no epoch was started, so a plain
  // `while (loader.next(b))` works on a fresh loader.
  bool next(Batch& out);
  // Passes over the epoch's next `batches` batches without loading them (a resumed run going
  // back to where its checkpoint was).
  void skip(int64_t batches);

  // Range-for over one epoch: begin() starts the next epoch itself, so each loop is a new
  // epoch. Do not also call start_epoch() before the loop, or an epoch is skipped.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = Batch*;
    using reference = Batch&;

    Iterator() = default;
    Batch& operator*() { return batch_; }
    Batch* operator->() { return &batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return loader_ == o.loader_; }
    bool operator!=(const Iterator& o) const { return !(*this == o); }

   private:
    friend class DataLoader;
    explicit Iterator(DataLoader* loader);
    DataLoader* loader_ = nullptr;  // null once the epoch is exhausted (equals end())
    Batch batch_;
  };
  Iterator begin();
  Iterator end() { return Iterator(); }

 private:
  std::shared_ptr<const Dataset> dataset_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  int shard_ = 0, shards_ = 1;
  int64_t epoch_ = -1;
  int64_t pos_ = 0;    // next position in order_
  int64_t limit_ = 0;  // positions past this are not served (drop_last)
  std::vector<int64_t> order_;
  std::vector<int64_t> indices_;  // reused per batch to avoid an allocation each time
};

}  // namespace shrink::data
