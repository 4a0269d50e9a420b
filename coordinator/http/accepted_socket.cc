#include "coordinator/http/accepted_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stylesweep {
namespace {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = sizeof(sockaddr_storage);

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }

  int port() const {
    if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    return -1;
  }
  std::string bytes() const { return std::string(reinterpret_cast<const char*>(&storage), length); }
};

// The endpoints of connected TCP socket `fd` whose local port is `port`, as
// bytes; empty for anything else (another port, a listening socket, a file,
// a closed number).
std::string Endpoints(int fd, int port, Address* peer_out = nullptr) {
  Address local;
  if (getsockname(fd, local.get(), &local.length) != 0 || local.port() != port) return "";
  Address peer;
  if (getpeername(fd, peer.get(), &peer.length) != 0) return "";
  if (peer_out != nullptr) *peer_out = peer;
  return absl::StrCat(local.bytes(), peer.bytes());
}

std::string Describe(const Address& address) {
  char host[NI_MAXHOST] = "";
  char service[NI_MAXSERV] = "";
  if (getnameinfo(address.get(), address.length, host, sizeof(host), service, sizeof(service),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "an unknown address";
  }
  if (address.storage.ss_family == AF_INET6) return absl::StrCat("[", host, "]:", service);
  return absl::StrCat(host, ":", service);
}

}  // namespace

AcceptedSocket::AcceptedSocket(AcceptedSocket&& other) noexcept
    : fd_(other.fd_), endpoints_(std::move(other.endpoints_)), peer_(std::move(other.peer_)) {
  other.fd_ = -1;
}

AcceptedSocket::~AcceptedSocket() { Close(); }

void AcceptedSocket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void AcceptedSocket::Shutdown() const {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void AcceptedSocket::FinishSending() const {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void AcceptedSocket::Abort() const {
  if (fd_ < 0) return;
  // connect(2) to AF_UNSPEC dissolves a TCP connection (tcp_disconnect):
  // the peer is sent a reset and both queues are dropped, while every
  // descriptor stays open and the server's thread sees the error.
  sockaddr unspecified{};
  unspecified.sa_family = AF_UNSPEC;
  if (::connect(fd_, &unspecified, sizeof(unspecified)) != 0) ::shutdown(fd_, SHUT_RDWR);
}

void AcceptedSocket::TrySend(const std::string& bytes) const {
  // One attempt: a client that does not read gets what the socket buffer
  // holds, and nothing waits on it.
  if (fd_ < 0) return;
  [[maybe_unused]] ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

absl::StatusOr<AcceptedSocket> FindAcceptedSocket(int port,
                                                  const std::function<bool(const std::string& endpoints)>& is_known) {
  // The descriptors open now, in increasing order: a scan of 0..RLIMIT_NOFILE
  // would cost up to a million system calls an accept when the socket is
  // not found early (limits of 2^20 are common).
  std::vector<int> open_fds;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    if (absl::SimpleAtoi(entry.path().filename().string(), &fd)) open_fds.push_back(fd);
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list /proc/self/fd: ", ec.message()));
  std::sort(open_fds.begin(), open_fds.end());
  for (const int fd : open_fds) {
    const std::string endpoints = Endpoints(fd, port);
    if (endpoints.empty() || is_known(endpoints)) continue;
    // Another thread may close `fd` and open something else under its number
    // between the look above and this dup: check the duplicate again.
    const int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return absl::InternalError(absl::StrCat("cannot duplicate socket ", fd, ": ", std::strerror(errno)));
    Address peer;
    if (Endpoints(copy, port, &peer) != endpoints) {
      ::close(copy);
      continue;
    }
    return AcceptedSocket(copy, endpoints, Describe(peer));
  }
  return absl::NotFoundError(absl::StrCat("no new connection on port ", port));
}

absl::StatusOr<uint64_t> TcpBytesReceived(int fd) {
  tcp_info info{};
  socklen_t length = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
    return absl::InternalError(absl::StrCat("TCP_INFO: ", std::strerror(errno)));
  }
  // An older kernel fills less of the structure than this header knows.
  if (length < offsetof(tcp_info, tcpi_bytes_received) + sizeof(info.tcpi_bytes_received)) {
    return absl::UnimplementedError("this kernel does not count the bytes a socket received");
  }
  return info.tcpi_bytes_received;
}

}  // namespace stylesweep
