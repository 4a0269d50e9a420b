#ifndef STYLESWEEP_RPC_TLS_FILES_H_
#define STYLESWEEP_RPC_TLS_FILES_H_

// The certificate and key a server presents (the gRPC port and the HTTP
// port share them), checked before either server is built. gRPC and
// cpp-httplib only say that a server would not start, which the coordinator
// could tell apart from a taken address no better than by guessing.

#include <string>

#include "absl/status/statusor.h"

namespace stylesweep {

struct TlsKeyPair {
  std::string cert_pem;  // the certificate chain, the server's own first
  std::string key_pem;   // its private key
};

// Reads `cert_file` and `key_file` and checks that the first holds a PEM
// certificate, the second an unencrypted PEM private key, and that the key is
// the certificate's. InvalidArgument naming the file, as the coordinator's
// settings call it (tls_cert, tls_key), and what is wrong: unreadable, not
// PEM, encrypted, or "tls_key K does not match tls_cert C". Thread-safe.
absl::StatusOr<TlsKeyPair> LoadTlsKeyPair(const std::string& cert_file, const std::string& key_file);

}  // namespace stylesweep

#endif  // STYLESWEEP_RPC_TLS_FILES_H_
