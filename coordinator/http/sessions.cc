#include "coordinator/http/sessions.h"


#include <algorithm>

#include "common/hash.h"

namespace stylesweep {

absl::StatusOr<std::string> SessionTable::Create(const Caller& caller, int64_t now_ms) {
  absl::StatusOr<std::string> id = RandomHex(32);
  if (!id.ok()) return id.status();
  absl::MutexLock lock(&mu_);
  // Expired ones first; then, while still full, the one closest to expiring.
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires_ms <= now_ms ? sessions_.erase(it) : std::next(it);
  }
  while (!sessions_.empty() && sessions_.size() >= capacity_) {
    sessions_.erase(std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.expires_ms < b.second.expires_ms;
    }));
  }
  sessions_[*id] = Session{caller, now_ms + lifetime_ms_};
  return id;
}

std::optional<Caller> SessionTable::Find(const std::string& id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_ms <= now_ms) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second.caller;
}

void SessionTable::Remove(const std::string& id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(id);
}

size_t SessionTable::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace stylesweep
