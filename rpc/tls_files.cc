#include "rpc/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace stylesweep {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Never asks a terminal for a passphrase: an encrypted key is refused.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::StatusOr<std::string> ReadSetting(const char* setting, const std::string& file) {
  absl::StatusOr<std::string> text = ReadFileToString(file);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat(setting, ": ", text.status().message()));
  return text;
}

}  // namespace

absl::StatusOr<TlsKeyPair> LoadTlsKeyPair(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both tls_cert (--tls-cert) and tls_key (--tls-key)");
  }
  TlsKeyPair pair;
  absl::StatusOr<std::string> cert_text = ReadSetting("tls_cert", cert_file);
  if (!cert_text.ok()) return cert_text.status();
  absl::StatusOr<std::string> key_text = ReadSetting("tls_key", key_file);
  if (!key_text.ok()) return key_text.status();
  pair.cert_pem = *std::move(cert_text);
  pair.key_pem = *std::move(key_text);

  // OpenSSL's error queue is per thread; leave nothing on it for others.
  ERR_clear_error();
  auto cert_bio = MemoryBio(pair.cert_pem);
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("tls_cert ", cert_file, " holds no PEM certificate (a '-----BEGIN CERTIFICATE-----' block)",
                     absl::StrContains(pair.cert_pem, "PRIVATE KEY-----") ? "; it holds a private key: is it tls_key?"
                                                                          : ""));
  }
  auto key_bio = MemoryBio(pair.key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    ERR_clear_error();
    if (absl::StrContains(pair.key_pem, "ENCRYPTED")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tls_key ", key_file, " is encrypted with a passphrase: give the coordinator an unencrypted key (e.g. "
          "`openssl pkey -in KEY -out KEY.plain`, kept readable only by its user)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key ", key_file, " holds no PEM private key (a '-----BEGIN PRIVATE KEY-----' block)",
                     absl::StrContains(pair.key_pem, "BEGIN CERTIFICATE") ? "; it holds a certificate: is it tls_cert?"
                                                                          : ""));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls_key ", key_file, " does not match tls_cert ", cert_file,
                                                   ": the key is not the one the certificate was issued for"));
  }
  return pair;
}

}  // namespace stylesweep
