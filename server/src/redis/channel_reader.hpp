// The seam between a poll and Redis for reading channels: "read channels {i, j, ...}, each
// after its last id". How the reads go out is this module's business alone: one read.lua
// call per channel through ChannelCommands::script_for (redis/channel_commands.hpp), which
// routes it: today every channel on the worker's command link, pipelined; in Redis Cluster
// mode each on its channel's node, all in parallel, results back in any order. A cluster
// worker changes only which ChannelCommands read_channels(Worker&, ...) uses.
//
// The types here are plain data (no hiredis, no libevent): PollCore consumes them in tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/protocol.hpp"

namespace rt {

class ChannelCommands;
class Worker;
struct Script;
namespace proto {
class Keys;
}

// The most backlog messages one channel read returns (read.lua's ARGV[2]); the rest comes
// with the client's next poll (PROTOCOL.md: at most 1000 messages per channel).
constexpr size_t kMaxReadMessages = 1000;

// One channel to read: its name, the client's last id L, and a tag given back with its
// result (a poll's channel index).
struct ChannelRead {
  std::string_view channel;  // only used during read_channels() (copy it to keep it)
  uint64_t last = 0;
  uint32_t tag = 0;
};

// What one atomic read of one channel saw (read.lua's contract), or why there is none.
struct ChannelReadResult {
  bool ok = false;
  std::string error;       // !ok: "redis unavailable", "redis error: ...", "out of memory"
  uint64_t newest = 0;     // N, the channel's msg_id (0 when absent)
  // The valid backlog messages with id > L, ascending, at most kMaxReadMessages (invalid
  // members are skipped and counted in rt_invalid_messages).
  std::vector<proto::Message> after;
  proto::Message tail;     // the newest backlog message (for a reset), when has_tail
  bool has_tail = false;
};

// Receives the results of read_channels().
class ChannelReadSink {
 public:
  virtual ~ChannelReadSink() = default;
  // The result for the read tagged `tag`. Called exactly once per ChannelRead, in any order
  // (results of different channels may come from different connections), possibly from
  // inside read_channels() itself (a read that could not be sent fails at once), otherwise
  // from a Redis reply callback: record the result, do not free the sink from here.
  virtual void on_channel_read(uint32_t tag, ChannelReadResult&& result) noexcept = 0;
};

// Reads every channel of `reads`, each with one atomic read (`read` = read.lua: N, the
// backlog after L, the newest member) sent with cmds.script_for(channel, ...). `sink` gets
// one on_channel_read per entry of `reads` and must stay alive until the last has come (a
// lost connection still calls back, with !ok; a read that could not be sent fails at once
// with "redis unavailable"). The replies come from `cmds`' connections, each exactly once
// (ChannelCommands' contract); read_channels keeps no reference to `cmds` itself.
// Never throws; out of memory fails the affected reads.
void read_channels(ChannelCommands& cmds, Script& read, const proto::Keys& keys, const std::vector<ChannelRead>& reads,
                   ChannelReadSink* sink) noexcept;
// The same for a poll of worker `w`: its channels' commands, its read.lua, its key names.
void read_channels(Worker& w, const std::vector<ChannelRead>& reads, ChannelReadSink* sink) noexcept;

}  // namespace rt
