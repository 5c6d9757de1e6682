// The Lua scripts of server/lua/ (publish.lua, read.lua): found on disk, loaded into Redis
// with SCRIPT LOAD whenever a command connection comes up, run with EVALSHA. When Redis
// answers NOSCRIPT (script cache flushed, failover) the call is retried once with EVAL,
// which also puts the script back into the cache.
#pragma once

#include <string>
#include <vector>

#include "redis_link.hpp"

namespace rt {

struct Script {
  std::string file;  // e.g. "publish.lua"
  std::string text;
  std::string sha;   // empty until a SCRIPT LOAD reply came back
};

// The scripts of one worker (each worker owns a copy: the sha is written by its own loop).
struct ScriptSet {
  Script publish{"publish.lua", "", ""};
  Script read{"read.lua", "", ""};

  // Reads the scripts from `dir`. Returns false with *error when a file is missing/empty.
  bool load_files(const std::string& dir, std::string* error);

  // Sends SCRIPT LOAD for every script on `link` (call when the link comes up; commands sent
  // after this on the same connection run after the scripts are loaded).
  void load_into(RedisLink& link) noexcept;
};

// Finds the directory holding publish.lua: `flag` when given, else next to the binary
// (<exe dir>/../server/lua, <exe dir>/../../server/lua), else ./server/lua, ../server/lua.
// Returns "" when none holds publish.lua.
std::string find_lua_dir(const std::string& flag);

// Runs `script` with `keys` and `args` on `link`. Returns false when the link is down (fn not
// called); otherwise fn is called exactly once with the final reply (NULL on connection
// failure; an error reply when the script failed).
bool run_script(RedisLink& link, Script& script, const std::vector<std::string>& keys,
                const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept;

// Sends one command somewhere (a RedisLink, a cluster router): the contract of
// RedisLink::command (false: not sent, fn never called; else fn called exactly once).
using CommandFn = bool (*)(void* target, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                           const size_t* lens) noexcept;

// run_script over any CommandFn (the NOSCRIPT retry goes the same way as the first try).
bool run_script_via(CommandFn send, void* target, Script& script, const std::vector<std::string>& keys,
                    const std::vector<std::string>& args, RedisLink::ReplyFn fn, void* priv) noexcept;

}  // namespace rt
