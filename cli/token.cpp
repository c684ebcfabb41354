// asyncops token add|list|revoke (issue 7): edits DATA_DIR/tokens, which
// holds only SHA-256 hashes. The daemon re-reads the file when a token it
// does not know arrives, so a new token works as soon as `token add` returns,
// and sees other changes within a second.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/token_commands.h"
#include "shared/tokens.h"
#include "shared/curve.h"
#include "shared/paths.h"

namespace asyncops {
namespace {

std::string tokens_path(const GlobalOptions& g, const std::string& data_dir, const std::string& file) {
  if (!file.empty()) return file;
  return g.data_dir(data_dir) + "/tokens";
}

int token_add(const Output& out, const std::string& path, const std::string& principal, const std::string& role_text) {
  auto role = parse_role(role_text);
  if (!role) {
    std::cerr << "asyncops: --role must be submitter, reader or admin" << std::endl;
    return exit_code::usage;
  }
  if (!valid_principal(principal)) {
    std::cerr << "asyncops: --principal must be 1 to 64 of letters, digits, '.', '_', '@', '-'" << std::endl;
    return exit_code::usage;
  }
  auto dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && dir != path) {
    if (auto made = make_dirs(dir, 0700); !made) {
      std::cerr << "asyncops: " << made.error() << std::endl;
      return exit_code::error;
    }
  }
  auto entries = read_tokens_file(path);
  if (!entries) {
    std::cerr << "asyncops: " << entries.error() << std::endl;
    return exit_code::error;
  }
  std::string token = new_token();
  std::string hash = sha256_hex(token);
  bool first = entries.value().empty();
  entries.value().push_back({hash, principal, *role});
  if (auto w = write_tokens_file(path, entries.value()); !w) {
    std::cerr << "asyncops: " << w.error() << std::endl;
    return exit_code::error;
  }
  if (first) {
    // Until now the daemon served local clients without a token; say so
    // before the operator's next tokenless command gets a 401.
    std::cerr << "asyncops: this is the first token: from now on every request needs a token "
                 "(--token or ASYNCOPS_TOKEN), local ones too"
              << std::endl;
  }
  if (out.format != OutputFormat::table) {
    out.value({{"principal", principal}, {"role", to_string(*role)}, {"hash", "sha256:" + hash}, {"file", path},
               {"token", token}});
    return exit_code::ok;
  }
  std::cout << "added a " << to_string(*role) << " token for " << principal << " (sha256:" << hash.substr(0, 12)
            << ") to " << path << "\n"
            << "it is shown only once; send it with --token, ASYNCOPS_TOKEN or Authorization: Bearer <token>\n"
            << token << std::endl;
  return exit_code::ok;
}

int token_list(const Output& out, const std::string& path) {
  auto entries = read_tokens_file(path);
  if (!entries) {
    std::cerr << "asyncops: " << entries.error() << std::endl;
    return exit_code::error;
  }
  if (out.format != OutputFormat::table) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& e : entries.value()) {
      items.push_back({{"principal", e.principal}, {"role", to_string(e.role)}, {"hash", "sha256:" + e.hash}});
    }
    out.list(items);
    return exit_code::ok;
  }
  std::printf("%-24s %-10s %s\n", "PRINCIPAL", "ROLE", "HASH");
  for (const auto& e : entries.value()) {
    std::printf("%-24s %-10s sha256:%s\n", e.principal.c_str(), to_string(e.role), e.hash.substr(0, 12).c_str());
  }
  return exit_code::ok;
}

int token_revoke(const std::string& path, const std::string& what) {
  auto entries = read_tokens_file(path);
  if (!entries) {
    std::cerr << "asyncops: " << entries.error() << std::endl;
    return exit_code::error;
  }
  std::string prefix = what.rfind("sha256:", 0) == 0 ? what.substr(7) : what;
  std::vector<TokenEntry> keep;
  size_t removed = 0;
  for (const auto& e : entries.value()) {
    bool by_name = e.principal == what;
    bool by_hash = prefix.size() >= 6 && e.hash.rfind(prefix, 0) == 0;
    if (by_name || by_hash) {
      ++removed;
    } else {
      keep.push_back(e);
    }
  }
  if (removed == 0) {
    std::cerr << "asyncops: no token matches '" << what << "' (a principal, or a hash prefix of 6+ hex digits)"
              << std::endl;
    return exit_code::error;
  }
  if (auto w = write_tokens_file(path, keep); !w) {
    std::cerr << "asyncops: " << w.error() << std::endl;
    return exit_code::error;
  }
  std::cout << "revoked " << removed << (removed == 1 ? " token" : " tokens") << std::endl;
  return exit_code::ok;
}

}  // namespace

void add_token_commands(CLI::App& app, const GlobalOptions& g, std::function<int()>& run) {
  auto* token = app.add_subcommand("token", "Manage API tokens (DATA_DIR/tokens holds only their hashes)");
  token->require_subcommand(1);
  token->fallthrough();  // `token add --data-dir D` as well as `token --data-dir D add`
  static std::string data_dir, file, principal, role = "submitter", what;
  token->add_option("--data-dir", data_dir, "Data dir holding the tokens file (default as for up)");
  token->add_option("--tokens", file, "The tokens file (default DATA_DIR/tokens)");
  auto* add = token->add_subcommand("add", "Create a token; it is printed once, as the last line");
  add->add_option("--principal", principal, "Who the token stands for")->required();
  add->add_option("--role", role, "submitter, reader or admin")
      ->capture_default_str()
      ->check(CLI::IsMember({"submitter", "reader", "admin"}));
  add->footer("Example:\n  TOKEN=$(asyncops token add --principal ann --role submitter | tail -n1)");
  add->callback([&] { run = [&] { return token_add(g.out(), tokens_path(g, data_dir, file), principal, role); }; });
  auto* list = token->add_subcommand("list", "List tokens: principal, role, hash prefix");
  list->callback([&] { run = [&] { return token_list(g.out(), tokens_path(g, data_dir, file)); }; });
  auto* revoke = token->add_subcommand("revoke", "Revoke a principal's tokens, or one token by hash prefix");
  revoke->add_option("WHAT", what, "PRINCIPAL or HASHPREFIX")->required();
  revoke->callback([&] { run = [&] { return token_revoke(tokens_path(g, data_dir, file), what); }; });

  auto* keygen = app.add_subcommand("keygen", "Print a ZeroMQ CURVE key pair (Z85) for asyncopsd or a worker");
  keygen->footer(
      "Example:\n  asyncops keygen > daemon.key   # asyncopsd --curve-secret-key-file daemon.key\n"
      "  asyncops keygen > worker.key   # grep public-key worker.key >> allowed-keys");
  keygen->callback([&] {
    run = [&] {
      auto kp = curve_keypair();
      if (!kp) {
        std::cerr << "asyncops: " << kp.error() << std::endl;
        return exit_code::error;
      }
      Output out = g.out();
      if (out.format != OutputFormat::table) {
        out.value({{"public_key", kp.value().public_key}, {"secret_key", kp.value().secret_key}});
        return exit_code::ok;
      }
      // The key file format that asyncopsd and asyncops-worker read.
      std::cout << "# ZeroMQ CURVE key pair; keep this file private (chmod 600)\n"
                << "public-key " << kp.value().public_key << "\n"
                << "secret-key " << kp.value().secret_key << std::endl;
      return exit_code::ok;
    };
  });
}

}  // namespace asyncops
