// A scripted stand-in for a Redis Sentinel, for the tests that need a sentinel to say
// exactly what they choose (name a replica as the master, announce a switch no real
// failover made, know no master at all, demand AUTH). It speaks RESP2 on a free loopback
// port and answers only what rt-server asks a sentinel: AUTH, PING,
// SENTINEL get-master-addr-by-name, SUBSCRIBE.
import net from 'node:net';
import { freePort } from '../../integration/lib/harness.mjs';

function bulk(s) {
  const b = Buffer.from(String(s));
  return `$${b.length}\r\n${b.toString()}\r\n`;
}

function array(items) {
  return `*${items.length}\r\n${items.map(bulk).join('')}`;
}

// Parses complete RESP arrays of bulk strings from `buf`; returns [commands, rest].
function parseCommands(buf) {
  const cmds = [];
  let pos = 0;
  for (;;) {
    if (pos >= buf.length || buf[pos] !== 0x2a) break;  // '*'
    let nl = buf.indexOf('\r\n', pos);
    if (nl < 0) break;
    const n = Number(buf.toString('latin1', pos + 1, nl));
    let p = nl + 2;
    const args = [];
    let complete = true;
    for (let i = 0; i < n; i++) {
      nl = buf.indexOf('\r\n', p);
      if (nl < 0 || buf[p] !== 0x24) { complete = false; break; }  // '$'
      const len = Number(buf.toString('latin1', p + 1, nl));
      if (buf.length < nl + 2 + len + 2) { complete = false; break; }
      args.push(buf.toString('utf8', nl + 2, nl + 2 + len));
      p = nl + 2 + len + 2;
    }
    if (!complete) break;
    cmds.push(args);
    pos = p;
  }
  return [cmds, buf.subarray(pos)];
}

// Starts a fake sentinel for master `name`. `master` is [host, port] or null (the sentinel
// knows no such master); `password` (and `user`) make it demand AUTH first.
export async function startFakeSentinel({ name = 'rtmaster', master = null, password, user } = {}) {
  const port = await freePort();
  const fake = {
    port,
    master,
    commands: [],     // every command received, as arrays of strings
    subscribers: new Set(),
    connections: new Set(),
    // Announces a switch to host:port on +switch-master (and answers it from now on).
    switchMaster(host, newPort) {
      const old = fake.master || ['0.0.0.0', 0];
      fake.master = [host, newPort];
      const msg = array(['message', '+switch-master', `${name} ${old[0]} ${old[1]} ${host} ${newPort}`]);
      for (const s of fake.subscribers) s.write(msg);
    },
    // Closes every client connection (the sentinel "restarts").
    dropConnections() {
      for (const s of fake.connections) s.destroy();
    },
    close: () => new Promise((resolve) => {
      fake.dropConnections();
      server.close(() => resolve());
    }),
  };
  const server = net.createServer((sock) => {
    fake.connections.add(sock);
    let buf = Buffer.alloc(0);
    let authed = !password;
    sock.on('error', () => {});
    sock.on('close', () => { fake.connections.delete(sock); fake.subscribers.delete(sock); });
    sock.on('data', (d) => {
      let cmds;
      [cmds, buf] = parseCommands(Buffer.concat([buf, d]));
      for (const args of cmds) {
        fake.commands.push(args);
        const verb = args[0].toUpperCase();
        if (verb === 'AUTH') {
          const [u, p] = args.length === 3 ? [args[1], args[2]] : ['default', args[1]];
          authed = p === password && (user === undefined ? u === 'default' : u === user);
          sock.write(authed ? '+OK\r\n' : '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
        } else if (!authed) {
          sock.write('-NOAUTH Authentication required.\r\n');
        } else if (verb === 'PING') {
          sock.write('+PONG\r\n');
        } else if (verb === 'SENTINEL' && (args[1] || '').toLowerCase() === 'get-master-addr-by-name') {
          sock.write(args[2] === name && fake.master ? array(fake.master.map(String)) : '*-1\r\n');
        } else if (verb === 'SUBSCRIBE') {
          args.slice(1).forEach((ch, i) => sock.write(`*3\r\n${bulk('subscribe')}${bulk(ch)}:${i + 1}\r\n`));
          fake.subscribers.add(sock);
        } else {
          sock.write(`-ERR unknown command '${args[0]}'\r\n`);
        }
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return fake;
}
