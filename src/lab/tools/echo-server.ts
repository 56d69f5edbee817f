// Echo server run inside lab pods: every reply names the pod, so a test can tell which backend
// answered. TCP: a greeting line, then an echo of whatever arrives. UDP: the greeting line followed
// by the datagram. HTTP: 200 with the greeting as body. All dual-stack on [::].
//   echo-server --name n1-p2 [--tcp 7000,7001] [--udp 7000] [--http 8080]
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { greeting, hostPort } from './protocol.ts';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    tcp: { type: 'string', multiple: true, default: [] },
    udp: { type: 'string', multiple: true, default: [] },
    http: { type: 'string', multiple: true, default: [] },
  },
});

function ports(list: readonly string[]): number[] {
  return list
    .flatMap((s) => s.split(','))
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1 || n > 65535)
        throw new Error(`echo-server: bad port ${JSON.stringify(s)}`);
      return n;
    });
}

const name = values.name;
if (name === undefined || name === '' || /\s/.test(name)) {
  process.stderr.write('echo-server: --name NAME is required\n');
  process.exit(2);
}
const tcpPorts = ports(values.tcp);
const udpPorts = ports(values.udp);
const httpPorts = ports(values.http);

function listenTcp(port: number): Promise<void> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(
      greeting(
        name!,
        hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0),
        hostPort(socket.localAddress ?? '?', socket.localPort ?? 0),
      ),
    );
    socket.pipe(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => resolve());
  });
}

// A hand-rolled HTTP/1.x responder: node:http costs ~100 ms to import, paid by every server start.
// Each request gets `200` with the greeting as body, then the connection closes.
function listenHttp(port: number): Promise<void> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      head += chunk;
      if (!head.includes('\r\n\r\n') && !head.includes('\n\n')) {
        if (head.length > 16384) socket.destroy();
        return;
      }
      socket.removeAllListeners('data');
      const body = greeting(
        name!,
        hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0),
        hostPort(socket.localAddress ?? '?', socket.localPort ?? 0),
      );
      socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n' +
          `content-length: ${Buffer.byteLength(body)}\r\nx-pod: ${name!}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => resolve());
  });
}

function listenUdp(port: number): Promise<void> {
  const socket = createSocket({ type: 'udp6', ipv6Only: false });
  socket.on('message', (message, rinfo) => {
    const head = greeting(name!, hostPort(rinfo.address, rinfo.port));
    socket.send(Buffer.concat([Buffer.from(head), message]), rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address: '::' }, () => {
      socket.removeListener('error', reject);
      socket.on('error', () => undefined); // ICMP errors for vanished clients
      resolve();
    });
  });
}

await Promise.all([...tcpPorts.map(listenTcp), ...udpPorts.map(listenUdp), ...httpPorts.map(listenHttp)]);
process.stdout.write(
  JSON.stringify({
    ready: true,
    name,
    tcp: tcpPorts,
    udp: udpPorts,
    http: httpPorts,
    uptimeMs: Math.round(process.uptime() * 1000),
  }) + '\n',
);
