#pragma once
// TokenPool: admission control for one pool of model-server replicas, in inference-native units.
//
// One pool holds the capacity of its replicas (tokens/s, KV-cache tokens, concurrency), the
// entitlements granted against it, the open reservations, and a queue of waiting requests. It
// decides, for each request, admit / queue (with a deadline) / refuse (with a retry-after), and
// is the one source of truth for what is in use, which the autoscaler and the router read too.
//
//   ManualClock clock;
//   auto pool = TokenPool::Create(config, clock).value();
//   EntitlementRef acme = pool->AddEntitlement(spec).value();   // entitlement admission
//   Decision d = pool->Admit(acme, {.prompt = Tokens(900), .output = Tokens(256)}, cookie);
//   if (d.outcome == AdmissionOutcome::kQueued) { ... later pool->Dispatch(&events) ... }
//   ...
//   d.reservation.Settle({.prompt = Tokens(870), .completion = Tokens(120)});
//
// Semantics and formulas: docs/token-pools.md. In short:
//   * token_rate is metered: each entitlement and the pool keep a level of charged tokens that
//     decays exponentially with time constant `rate_window`; usage in tokens/s = level / window.
//     A request charges its estimated prompt + output tokens; Settle() swaps in actual usage.
//   * kv_tokens and concurrency are held: usage is the exact sum over open reservations.
//   * within guarantee -> admit if the pool physically fits; above -> admit as burst up to the
//     dynamic burst ceiling, if the pool's spare (which keeps back (1 - lambda) of every unused
//     guarantee) stays >= 0; otherwise queue if the SLO allows waiting, else refuse.
//   * queue order: strict bands guaranteed > elastic > spot; inside a band, priority, then the
//     band's QueueOrder (defaults: earliest deadline; smallest virtual counter, the debt-based
//     fair share, with at-risk requests first; FIFO).
//
// Scale-out: the decision code reads only the pool's current capacity and each entitlement's
// effective guarantee and burst. A gateway replica running on a leased share sets those with
// SetCapacity() and SetLease(); nothing else changes.
//
// Thread-safety: not synchronized. One thread owns a TokenPool and its Reservations (the
// simulator loop, or a gateway shard/strand). Reservations must not outlive their pool.
// Allocation: none per request once the slabs and heaps have grown to their working size.

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenpool/clock.h"
#include "tokenpool/entitlement.h"
#include "tokenpool/queue_order.h"
#include "tokenpool/resources.h"
#include "tokenpool/status.h"
#include "tokenpool/units.h"

namespace tokenpool {

// What happened to a request. Not an error: each value is also a metric label (ToString).
enum class AdmissionOutcome : uint8_t {
  kAdmittedGuaranteed = 0,   // within the entitlement's guarantee
  kAdmittedBurst,            // above the guarantee, within the dynamic burst ceiling
  kQueued,                   // waiting; see Decision::deadline
  kRejectedOverEntitlement,  // above the entitlement's burst ceiling and may not wait
  kRejectedPoolSaturated,    // the pool has no room and the request may not wait
  kRejectedSpotShed,         // spot refused while higher-priority work waits
  kRejectedQueueFull,        // the pool's queue is at max_queued
  kRejectedQuota,            // a token quota window is used up
  kRejectedTooLarge,         // can never fit: larger than the burst ceiling or the pool
  kRejectedUnknownEntitlement,
  kExpired,    // waited past its deadline in the queue
  kCancelled,  // the caller cancelled it while queued
};
inline constexpr int kNumAdmissionOutcomes = 12;
// "admitted_guaranteed", "queued", "rejected_quota", ...
std::string_view AdmissionOutcomeName(AdmissionOutcome o);
inline bool IsAdmitted(AdmissionOutcome o) {
  return o == AdmissionOutcome::kAdmittedGuaranteed || o == AdmissionOutcome::kAdmittedBurst;
}

// Estimated cost of one request. Charges prompt + output tokens to token_rate, the same to
// kv_tokens (the KV it may hold at its longest), and 1 to concurrency.
struct RequestCost {
  Tokens prompt;
  Tokens output;  // the output reserve: max_tokens, or a per-model default
  Tokens Total() const { return prompt + output; }
};

// What a request actually used, from the backend's `usage`.
struct Usage {
  Tokens prompt;
  Tokens completion;
  Tokens Total() const { return prompt + completion; }
};

struct EntitlementRef {
  uint32_t index = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return index != UINT32_MAX; }
  bool operator==(const EntitlementRef&) const = default;
};

struct QueueTicket {
  uint32_t node = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const { return node != UINT32_MAX; }
};

class TokenPool;

// A move-only handle to capacity taken at admission. Exactly one of Settle() or Release()
// closes it; destroying an open handle releases it. Either way the pool's in-use returns what
// the request held, once. The handle must not outlive its pool.
class Reservation {
 public:
  Reservation() = default;
  ~Reservation() { Release(); }
  Reservation(Reservation&& o) noexcept;
  Reservation& operator=(Reservation&& o) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  bool active() const { return pool_ != nullptr; }
  // Completion: replace the estimate with actual usage on token_rate, quotas and fair share;
  // return the held kv_tokens and concurrency. No-op on an inactive handle.
  void Settle(const Usage& actual);
  // Failure or cancel before any service: refund the estimate everywhere. No-op when inactive.
  // (A request that failed after partial service should Settle() with what it used.)
  void Release();
  EntitlementRef entitlement() const;
  // Identity of an active reservation within its pool (what SpotPreemptionCandidates returns);
  // 0 when inactive.
  uint64_t id() const;

 private:
  friend class TokenPool;
  Reservation(TokenPool* pool, uint32_t slot, uint32_t generation)
      : pool_(pool), slot_(slot), generation_(generation) {}
  TokenPool* pool_ = nullptr;
  uint32_t slot_ = 0;
  uint32_t generation_ = 0;
};

struct Decision {
  AdmissionOutcome outcome = AdmissionOutcome::kRejectedUnknownEntitlement;
  Reservation reservation;               // active when IsAdmitted(outcome)
  QueueTicket ticket;                    // valid when outcome == kQueued
  Time deadline = Time::Max();           // when queued: refused at this time unless dispatched
  Duration retry_after{};                // when refused: a hint for Retry-After
  Dim limiting_dim = Dim::kConcurrency;  // when refused/queued: the dimension that did not fit
};

// A queued request that left the queue: admitted (with its reservation) or expired.
struct QueueEvent {
  uint64_t cookie = 0;  // the caller's id given to Admit()
  AdmissionOutcome outcome = AdmissionOutcome::kExpired;
  Reservation reservation;
  Duration waited{};
  Duration retry_after{};  // for kExpired
};

struct PoolConfig {
  std::string name;
  ResourceVector replica_capacity;  // per replica, from the capacity model
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  int32_t initial_replicas = 1;
  // Time constant of the token_rate meter. It also bounds the largest request a rate limit L
  // admits: L x window tokens. 30 s: long enough to admit a 32K-token request against a
  // 1,100 tok/s limit and to average over many requests, short enough that burst ceilings react
  // within seconds when guaranteed demand returns.
  Duration rate_window = Seconds(30);
  // Lending factor lambda: the share of unused guarantees lent to burst work. 0.9: 10% of every
  // idle guarantee stays free, so a returning guaranteed tenant is admitted at once rather than
  // after borrowed work drains.
  double lending_max = 0.9;
  double lending_min = 0.0;
  // While guaranteed work waits, lambda is multiplied by this once per adjust interval...
  double lending_decrease = 0.5;
  Duration lending_adjust_interval = Milliseconds(50);
  // ...and when none waits, it recovers by this much per second (back to max in ~4.5 s).
  double lending_recovery_per_s = 0.2;
  // An elastic request is at risk when it has waited (1 - at_risk_fraction) of its queue wait;
  // it then goes before debt order. 0.25: a 500 ms SLO is at risk after 375 ms.
  double at_risk_fraction = 0.25;
  // Most credit (tokens) an idle elastic entitlement can bank: on becoming backlogged its
  // virtual counter is lifted to at least (reference - debt_cap_tokens / weight).
  double debt_cap_tokens = 16384;
  uint32_t max_queued = 100000;
  // How often cached rate usage of untouched entitlements is recomputed (bounded staleness of
  // the spare, which is conservative in between).
  Duration refresh_interval = Seconds(1);
  // Order inside each band (guaranteed, elastic, spot), by QueueOrder name.
  std::array<std::string, kNumClasses> order = {"edf", "fair-share", "fifo"};

  // "pools[llama-70b/short].max_replicas: must be >= min_replicas (2), got 1".
  Status Validate() const;
};

// Counters per pool and per entitlement: plain numbers the gateway exports as metrics and the
// simulator writes into its reports.
struct AdmissionCounters {
  std::array<uint64_t, kNumAdmissionOutcomes> outcomes{};  // indexed by AdmissionOutcome
  uint64_t dispatched = 0;  // queued requests later admitted (also counted in outcomes)
  uint64_t settled = 0;
  uint64_t released = 0;
  int64_t prompt_tokens = 0;      // settled, actual
  int64_t completion_tokens = 0;  // settled, actual
  uint64_t count(AdmissionOutcome o) const { return outcomes[static_cast<int>(o)]; }
  AdmissionCounters& operator+=(const AdmissionCounters& o);
};

struct EntitlementSnapshot {
  std::string name;
  std::string tenant;
  EntitlementClass cls = EntitlementClass::kElastic;
  ResourceVector guarantee;      // effective (leased) guarantee
  ResourceVector burst;          // effective static burst cap
  ResourceVector in_use;         // token_rate in tokens/s (meter), kv and concurrency held
  ResourceVector burst_ceiling;  // the dynamic ceiling now
  double debt_tokens = 0;        // owed service vs the pool's reference (> 0: behind)
  double virtual_tokens = 0;     // fair-share counter (tokens / weight)
  uint32_t queued = 0;
  std::array<int64_t, kNumQuotaWindows> quota_remaining{};  // -1 = unlimited
  int64_t served_tokens = 0;  // charged service (estimate, corrected at settle)
  AdmissionCounters counters;
  bool draining = false;  // removed; kept until its reservations close
};

// A tenant of the pool over every entitlement it has had there: counters that only grow
// (removed entitlements, and one removed and added again, included), for metrics that must
// not run backwards; in use and queued: its entitlements now, draining ones included.
struct TenantSnapshot {
  std::string tenant;
  AdmissionCounters counters;
  ResourceVector in_use;
  uint32_t queued = 0;
};

struct PoolSnapshot {
  std::string name;
  int32_t replicas = 0;
  ResourceVector capacity;      // now
  ResourceVector max_capacity;  // at max_replicas
  ResourceVector in_use;
  ResourceVector guarantees;     // sum of effective guarantees
  ResourceVector queued_demand;  // cost of queued requests (token_rate as tokens/window)
  ResourceVector spare;          // room for new burst work
  double lending_factor = 0;
  uint32_t queued = 0;
  uint32_t guaranteed_waiting = 0;
  uint32_t open_reservations = 0;
  AdmissionCounters counters;
};

class TokenPool {
 public:
  // The clock must outlive the pool.
  static Result<std::unique_ptr<TokenPool>> Create(const PoolConfig& config, const Clock& clock);
  ~TokenPool();
  TokenPool(const TokenPool&) = delete;
  TokenPool& operator=(const TokenPool&) = delete;

  // --- entitlement admission: promised = provisioned ---
  // Accepts `spec` only if it is valid and the sum of guarantees (guaranteed and elastic) fits
  // the pool at max_replicas on every dimension; otherwise says by how much it would not.
  Result<EntitlementRef> AddEntitlement(const EntitlementSpec& spec);
  // Same check for a change; the running state (usage, queue, debt) is kept.
  Status UpdateEntitlement(EntitlementRef ref, const EntitlementSpec& spec);
  // Stops admission for it at once, refuses its queued requests (as kCancelled events on the
  // next Dispatch), frees its guarantee; its open reservations settle normally.
  Status RemoveEntitlement(EntitlementRef ref);
  // The pool's entitlements become `specs` (by name) as one change: the others removed (as
  // RemoveEntitlement), the rest updated (running state kept, as UpdateEntitlement) or added.
  // Checked as a set: every spec valid, no name twice, the final sum of guarantees fits the
  // pool at max_replicas; the order of the steps does not matter (a sequence of Update calls
  // can be refused on the way, as when two entitlements trade a dimension). On error nothing
  // changes. CheckEntitlementSet is the check alone.
  Status ReplaceEntitlements(std::span<const EntitlementSpec> specs);
  Status CheckEntitlementSet(std::span<const EntitlementSpec> specs) const;
  Result<EntitlementRef> Find(std::string_view name) const;
  std::vector<EntitlementRef> Entitlements() const;
  // Removed entitlements whose reservations have not all closed yet.
  std::vector<EntitlementRef> DrainingEntitlements() const;

  // --- request admission ---
  // `cookie` is the caller's request id, returned in the QueueEvent if the request queues.
  Decision Admit(EntitlementRef ref, const RequestCost& cost, uint64_t cookie);
  // Removes a queued request (client gone). Returns false if it already left the queue.
  bool Cancel(QueueTicket ticket);
  // Admits queued requests in order while they fit, and expires those past their deadline.
  // Appends to *events; returns how many were appended. Call after capacity frees (Settle,
  // Release, SetCapacity) and by NextWakeup().
  size_t Dispatch(std::vector<QueueEvent>* events);
  // Whether Dispatch() would have anything to do: a request queued or a cancellation to report.
  // When not, a caller may skip it (the pool's decay and lending state are brought up to date
  // lazily by whatever reads them next).
  bool HasQueueWork() const { return queued_total_ > 0 || !cancelled_cookies_.empty(); }
  // The earliest time at which Dispatch() has timed work (a queued request's expiry), or
  // Time::Max() when none. (At-risk promotion needs no timer: it only matters when capacity
  // frees, and every free is followed by a Dispatch whenever something is queued.)
  Time NextWakeup();
  // The preemptible class: while a guaranteed request within its guarantee waits because the
  // pool is full, the spot reservations whose release would make room for it, newest first
  // (the least work lost). Appends their Reservation::id()s to *ids and returns how many; none
  // when releasing every spot reservation would still not be enough. The caller aborts those
  // requests and releases their handles; the next Dispatch() admits the guaranteed one.
  size_t SpotPreemptionCandidates(std::vector<uint64_t>* ids);

  // --- capacity ---
  // Capacity = replicas x replica_capacity; requires min_replicas <= n <= max_replicas.
  Status SetReplicas(int32_t n);
  // A new scaling range (a reloaded config) and the replicas now: the promise moves to the new
  // max_replicas, so a range whose maximum cannot hold the guarantees in force is refused
  // (FailedPrecondition, by how much on which dimension), as is one that breaks
  // PoolConfig::Validate's rules or does not contain `replicas`; nothing changes then.
  Status SetReplicaRange(int32_t min_replicas, int32_t max_replicas, int32_t replicas);
  // Any current capacity: a node lost, or a leased share in scale-out. Guarantees are not
  // re-checked (they are promised at max_replicas); fair share absorbs a shortfall.
  void SetCapacity(const ResourceVector& capacity);
  // Scale-out: run this entitlement on a leased share of its guarantee and burst.
  Status SetLease(EntitlementRef ref, const ResourceVector& guarantee, const ResourceVector& burst);

  // --- introspection ---
  const PoolConfig& config() const { return config_; }
  PoolSnapshot Snapshot();
  Result<EntitlementSnapshot> SnapshotEntitlement(EntitlementRef ref);
  std::vector<TenantSnapshot> SnapshotTenants();  // by tenant name
  ResourceVector InUse();  // token_rate in tokens/s
  ResourceVector Capacity() const { return capacity_; }
  // Largest used/capacity share over the held dimensions (kv, concurrency) and the rate meter:
  // the router's saturation signal.
  double Utilization();
  uint32_t QueueLength() const { return queued_total_; }
  double LendingFactor() const { return lambda_; }

 private:
  friend class Reservation;
  struct EntState;
  struct ResSlot;
  struct QNode;
  struct HeapEntry {
    double k1;
    double k2;
    uint32_t ent;
    uint32_t version;
  };
  struct HeapEntryGreater {
    bool operator()(const HeapEntry& a, const HeapEntry& b) const {
      // Ties go to the lower entitlement index, so the order never depends on heap history.
      if (a.k1 != b.k1) return a.k1 > b.k1;
      return a.k2 != b.k2 ? a.k2 > b.k2 : a.ent > b.ent;
    }
  };
  using Heap = std::vector<HeapEntry>;  // min-heap via HeapEntryGreater
  struct ExpiryEntry {
    int64_t deadline_ns;
    uint32_t node;
    uint32_t generation;
  };
  enum class Fit : uint8_t { kWithin, kBurst, kBlockedEntitlement, kBlockedPool, kBlockedShed };
  struct FitResult {
    Fit fit;
    Dim dim;
  };

  TokenPool(const PoolConfig& config, const Clock& clock);

  void Advance(Time now);  // lambda, periodic refresh
  void DecayPool(Time now);
  void DecayEnt(EntState& e, Time now);
  void Retally(EntState& e);           // refresh e's contribution to the aggregates
  void DropContribution(EntState& e);  // remove e's contribution from the aggregates
  void FreeEntitlement(uint32_t index);
  void RefreshAll(Time now);
  ResourceVector CostVector(const RequestCost& c) const;
  FitResult TryFit(const EntState& e, const ResourceVector& c, bool in_order) const;
  double Ceiling(const EntState& e, Dim d) const;
  double BurstWeight(const EntState& e, Dim d) const;
  bool QuotaAllows(EntState& e, int64_t tokens, Time now, Duration* retry) const;
  // `at_risk`: an elastic request served out of debt order (PeekBand's at-risk pick), which
  // does not move the fair-share reference v_floor_.
  Reservation Take(uint32_t ent_index, const RequestCost& cost, Time now, bool at_risk = false);
  void CloseSlot(uint32_t slot, const Usage* actual);
  Duration RetryAfter(const EntState& e, const ResourceVector& c, Dim dim, Time now) const;
  bool WithinGuarantee(const EntState& e, const ResourceVector& c) const;
  void Enqueue(EntState& e, uint32_t ent_index, const RequestCost& cost, uint64_t cookie, Time now,
               bool within, Decision* d);
  void Unlink(uint32_t node);
  void PushHeaps(uint32_t ent_index, Time now);
  bool PeekBand(int band, Time now, uint32_t* ent_index);
  void CompactHeaps();
  void ChargeService(EntState& e, double tokens);
  void LiftOnBacklog(EntState& e);
  double ReferenceVirtual() const;
  EntState* Get(EntitlementRef ref);
  Status CheckGuarantees(const EntitlementSpec& spec, const EntState* replacing) const;
  EntitlementRef Insert(const EntitlementSpec& spec);        // AddEntitlement, checked already
  void Change(uint32_t index, const EntitlementSpec& spec);  // UpdateEntitlement, checked

  PoolConfig config_;
  const Clock& clock_;
  int32_t replicas_ = 0;
  ResourceVector capacity_;
  ResourceVector max_capacity_;

  std::deque<EntState> ents_;  // deque: stable addresses, no 2x capacity slack per entitlement
  std::vector<uint32_t> free_ents_;
  std::unordered_map<std::string, uint32_t> by_name_;

  std::vector<ResSlot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<QNode> nodes_;
  std::vector<uint32_t> free_nodes_;

  // Pool usage: kv and concurrency exact; token_rate as a decaying level (tokens).
  double kv_used_ = 0;
  double conc_used_ = 0;
  double rate_level_ = 0;
  Time rate_at_;
  double inv_window_s_ = 0;

  // Aggregates over entitlements' cached usage u (see Retally): sum max(u, G), sum max(0, G-u),
  // sum G; weights of entitlements bursting (u > G) per dimension, non-spot and spot; sum of
  // spot usage.
  ResourceVector agg_max_ug_;
  ResourceVector agg_unused_;
  ResourceVector sum_g_;
  ResourceVector burst_w_;
  ResourceVector spot_burst_w_;
  ResourceVector spot_used_;

  double lambda_ = 0;
  Time lambda_at_;
  Time last_decrease_;
  Time last_refresh_;
  double v_floor_ = 0;  // fair-share reference: the virtual counter of the last elastic service
                        // in debt order (an at-risk pick out of that order does not move it)
  bool at_risk_pick_ = false;  // PeekBand's last elastic pick was an at-risk one, not the top

  // Queue: per-entitlement FIFO lists of nodes; band heaps of backlogged entitlements.
  std::array<uint32_t, kNumClasses> queued_by_class_{};
  uint32_t queued_total_ = 0;
  uint32_t guaranteed_waiting_ = 0;  // queued requests within their guarantee
  // The highest-priority band (class index) whose queued work waits on the pool, as the last
  // Dispatch or a queued arrival found it; kNumClasses: none. Queued work of a band below it
  // waits only on its entitlements' own caps, and holds no one else back.
  int blocked_band_ = kNumClasses;
  uint32_t backlogged_ents_ = 0;
  uint64_t enqueue_seq_ = 0;
  uint64_t dispatch_round_ = 1;  // EntState::skip_round marks entitlements skipped this round
  ResourceVector queued_cost_;
  std::array<const QueueOrder*, kNumClasses> orders_{};
  std::array<Heap, kNumClasses> band_heaps_;  // (-priority, the band's QueueOrder key)
  Heap heap_risk_;                            // elastic: (head at-risk time, 0)
  std::vector<ExpiryEntry> expiry_;           // min-heap by deadline
  std::vector<HeapEntry> skipped_;            // scratch for Dispatch
  std::vector<uint64_t> cancelled_cookies_;   // queued requests of removed entitlements
  // The counters of entitlements freed after their removal, per tenant (SnapshotTenants).
  std::map<std::string, AdmissionCounters, std::less<>> retired_counters_;

  double mean_hold_s_ = 1.0;  // EMA of how long reservations are held: retry-after hint
  uint32_t open_reservations_ = 0;
  AdmissionCounters counters_;
};

}  // namespace tokenpool
