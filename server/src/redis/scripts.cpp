#include "scripts.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "log.hpp"

namespace rt {

namespace {

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string exe_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  std::string p(buf);
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

void on_script_loaded(redisReply* reply, void* priv) noexcept {
  auto* script = static_cast<Script*>(priv);
  if (reply && reply->type == REDIS_REPLY_STRING) {
    script->sha.assign(reply->str, reply->len);
    RT_LOG(debug, "script loaded").kv("file", script->file).kv("sha", script->sha);
  } else if (reply && reply->type == REDIS_REPLY_ERROR) {
    RT_LOG(error, "SCRIPT LOAD failed").kv("file", script->file).kv("error", std::string(reply->str, reply->len));
  }
}

// One script call in flight; owns copies of its arguments for the NOSCRIPT retry.
struct EvalCall {
  CommandFn command;
  void* target;
  Script* script;
  std::vector<std::string> keys, args;
  RedisLink::ReplyFn fn;
  void* priv;
  bool retried;
};

bool send(EvalCall* call, bool by_sha) noexcept;

void on_eval_reply(redisReply* reply, void* priv) noexcept {
  auto* call = static_cast<EvalCall*>(priv);
  if (reply && reply->type == REDIS_REPLY_ERROR && !call->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
    call->retried = true;
    RT_LOG(warn, "script not in Redis cache, retrying with EVAL").kv("file", call->script->file);
    if (send(call, false)) return;
    // The link went down between the reply and the retry: report a connection failure.
    call->fn(nullptr, call->priv);
    delete call;
    return;
  }
  call->fn(reply, call->priv);
  delete call;
}

bool send(EvalCall* call, bool by_sha) noexcept {
  size_t n = 3 + call->keys.size() + call->args.size();
  std::vector<const char*> argv(n);
  std::vector<size_t> lens(n);
  std::string nkeys = std::to_string(call->keys.size());
  argv[0] = by_sha ? "EVALSHA" : "EVAL";
  lens[0] = strlen(argv[0]);
  const std::string& body = by_sha ? call->script->sha : call->script->text;
  argv[1] = body.data();
  lens[1] = body.size();
  argv[2] = nkeys.data();
  lens[2] = nkeys.size();
  size_t i = 3;
  for (const auto& k : call->keys) { argv[i] = k.data(); lens[i] = k.size(); i++; }
  for (const auto& a : call->args) { argv[i] = a.data(); lens[i] = a.size(); i++; }
  return call->command(call->target, on_eval_reply, call, int(n), argv.data(), lens.data());
}

}  // namespace

bool ScriptSet::load_files(const std::string& dir, std::string* error) {
  for (Script* s : {&publish, &read}) {
    std::string path = dir + "/" + s->file;
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    s->text = ss.str();
    if (!in || s->text.empty()) {
      *error = "cannot read Lua script '" + path + "'";
      return false;
    }
  }
  return true;
}

void ScriptSet::load_into(RedisLink& link) noexcept {
  for (Script* s : {&publish, &read}) {
    const char* argv[] = {"SCRIPT", "LOAD", s->text.c_str()};
    size_t lens[] = {6, 4, s->text.size()};
    link.command(on_script_loaded, s, 3, argv, lens);
  }
}

std::string find_lua_dir(const std::string& flag) {
  if (!flag.empty()) return file_exists(flag + "/publish.lua") ? flag : "";
  std::string exe = exe_dir();
  std::vector<std::string> candidates;
  if (!exe.empty()) {
    candidates.push_back(exe + "/../server/lua");
    candidates.push_back(exe + "/../../server/lua");
    candidates.push_back(exe + "/lua");
  }
  candidates.push_back("server/lua");
  candidates.push_back("../server/lua");
  for (const auto& c : candidates)
    if (file_exists(c + "/publish.lua")) return c;
  return "";
}

namespace {
bool link_command(void* target, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                  const size_t* lens) noexcept {
  return static_cast<RedisLink*>(target)->command(fn, priv, argc, argv, lens);
}
}  // namespace

bool run_script(RedisLink& link, Script& script, const std::vector<std::string>& keys,
                const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept {
  if (!link.up()) return false;
  return run_script_via(link_command, &link, script, keys, args, fn, priv);
}

bool run_script_via(CommandFn command, void* target, Script& script, const std::vector<std::string>& keys,
                    const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept {
  EvalCall* call = nullptr;
  try {
    call = new EvalCall{command, target, &script, keys, args, fn, priv, false};
  } catch (...) {
    return false;
  }
  bool ok = send(call, !script.sha.empty());
  if (!ok) delete call;
  return ok;
}

}  // namespace rt
