#ifndef STYLESWEEP_COORDINATOR_HTTP_ACCEPTED_SOCKET_H_
#define STYLESWEEP_COORDINATOR_HTTP_ACCEPTED_SOCKET_H_

// Socket-level help for the HTTP server's connection limits
// (connection_limits.h). cpp-httplib hands its task queue a closure over each
// accepted socket, never the socket itself; FindAcceptedSocket finds it.
// Kept apart from httplib.h, whose <netinet/tcp.h> clashes with the
// <linux/tcp.h> that TcpBytesReceived needs.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace stylesweep {

// A connection's server-side socket, found by FindAcceptedSocket. Owns `fd`,
// a duplicate of the server's descriptor: shutting it down ends the
// connection, and while it is open the socket and the number stay this
// connection's, even after the server closes its own descriptor. Move-only.
class AcceptedSocket {
 public:
  AcceptedSocket(int fd, std::string endpoints, std::string peer)
      : fd_(fd), endpoints_(std::move(endpoints)), peer_(std::move(peer)) {}
  AcceptedSocket(AcceptedSocket&& other) noexcept;
  AcceptedSocket& operator=(AcceptedSocket&&) = delete;
  ~AcceptedSocket();

  int fd() const { return fd_; }
  // Both addresses and ports, as bytes: equal for two descriptors of one
  // connection, different for any two connections open at once.
  const std::string& endpoints() const { return endpoints_; }
  // "127.0.0.1:54321" or "[::1]:54321", for logs.
  const std::string& peer() const { return peer_; }

  // Ends the connection both ways (shutdown(2)): what was sent still
  // arrives, then end of file; the server's reads return what had arrived,
  // then end of file, so its thread finishes with it.
  void Shutdown() const;
  // Sends end of file after what was written (shutdown(2), SHUT_WR).
  void FinishSending() const;
  // Ends the connection at once: resets it (RST) and drops whatever it had
  // received and not yet read, so the server's next read fails. For a client
  // past a limit, which is owed nothing more.
  void Abort() const;
  // Closes the duplicate (the connection lives on while the server's own
  // descriptor is open). Idempotent; the destructor does it too.
  void Close();
  // Writes what fits without waiting; for a last word before Shutdown().
  void TrySend(const std::string& bytes) const;

 private:
  int fd_;
  std::string endpoints_;
  std::string peer_;
};

// The socket of a connection that was just accepted on local port `port`:
// the lowest-numbered descriptor whose local port is `port`, which has a peer
// (so not the listening socket) and whose endpoints `is_known` does not
// recognise. accept(2) hands out the lowest free number, so the scan usually
// ends early. For the thread that calls accept(2) and knows every other
// connection on the port; NotFound when there is none.
absl::StatusOr<AcceptedSocket> FindAcceptedSocket(int port,
                                                  const std::function<bool(const std::string& endpoints)>& is_known);

// Bytes the kernel has received on TCP socket `fd` since the connection
// opened (TCP_INFO's tcpi_bytes_received, Linux 4.1 and later).
absl::StatusOr<uint64_t> TcpBytesReceived(int fd);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_ACCEPTED_SOCKET_H_
