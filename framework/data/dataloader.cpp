// DataLoader: epoch ordering (Fisher-Yates with shrink::Generator) and batch iteration.
#include "framework/data/dataloader.h"

#include <algorithm>
#include <utility>

#include "framework/core/random.h"

namespace shrink::data {

namespace {

// SplitMix64 finaliser: turns (seed, epoch) into a well-spread generator seed, so nearby
// seeds or epochs do not give correlated mt19937_64 streams.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, int64_t batch_size, bool shuffle,
                       uint64_t seed, bool drop_last)
    : dataset_(std::move(dataset)),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  SHRINK_CHECK(dataset_ != nullptr, "DataLoader: dataset is null");
  SHRINK_CHECK(batch_size_ > 0, "DataLoader: batch_size must be positive, got ", batch_size_);
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_->size(), rest = n % batch_size_;
  return n / batch_size_ + (rest > 0 && !drop_last_ && rest >= shards_ ? 1 : 0);
}

void DataLoader::set_shard(int shard, int shards) {
  SHRINK_CHECK(shards >= 1 && shard >= 0 && shard < shards, "DataLoader::set_shard: shard ", shard, " of ", shards,
               " is not a shard");
  SHRINK_CHECK(batch_size_ >= shards, "DataLoader::set_shard: a batch of ", batch_size_, " cannot be split into ",
               shards, " non-empty shards (give a batch of at least one sample per rank)");
  shard_ = shard;
  shards_ = shards;
  limit_ = std::min(dataset_->size(), num_batches() * batch_size_);
}

void DataLoader::start_epoch() { start_epoch(epoch_ + 1); }

void DataLoader::start_epoch(int64_t epoch) {
  SHRINK_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  const int64_t n = dataset_->size();
  order_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order_[i] = i;
  if (shuffle_) {
    // A fresh generator per epoch (rather than one advancing across epochs) is what makes
    // epoch e's order independent of which earlier epochs were run.
    Generator gen(mix(seed_ ^ mix(static_cast<uint64_t>(epoch))));
    for (int64_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[gen.randint(i + 1)]);
  }
  pos_ = 0;
  limit_ = std::min(n, num_batches() * batch_size_);
}

bool DataLoader::next(Batch& out) {
  if (epoch_ < 0) start_epoch();
  if (pos_ >= limit_) return false;
  const int64_t b = std::min(batch_size_, limit_ - pos_);
  const int64_t lo = b * shard_ / shards_, hi = b * (shard_ + 1) / shards_;
  indices_.assign(order_.begin() + pos_ + lo, order_.begin() + pos_ + hi);
  pos_ += b;
  out = dataset_->get_batch(indices_);
  out.indices = Tensor::from_vector_i64(indices_, {hi - lo});
  out.global_size = b;
  return true;
}

void DataLoader::skip(int64_t batches) {
  SHRINK_CHECK(batches >= 0, "DataLoader::skip: batches must be >= 0, got ", batches);
  if (epoch_ < 0) start_epoch();
  pos_ = std::min(limit_, pos_ + batches * batch_size_);
}

DataLoader::Iterator::Iterator(DataLoader* loader) : loader_(loader) { ++*this; }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (loader_ && !loader_->next(batch_)) loader_ = nullptr;
  return *this;
}

DataLoader::Iterator DataLoader::begin() {
  start_epoch();
  return Iterator(this);
}

}  // namespace shrink::data
