// An address every connect to is refused, for as long as a test runs.
//
// A port bound and then released is not one: the kernel hands it to the next listen(0) of a test
// running alongside (CI once saw a test's dead "ledger" endpoint answer 404 NOT_FOUND, for 1000
// requests in a row, from another test's sidecar that had been given its port). Port 1 (tcpmux)
// lies below the ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default), so no
// listen(0) is ever given it, and nothing in this project binds it. It is checked before use, so
// a machine where something does listen there fails loudly here instead of in an assertion later.
import net from 'node:net';

const HOST = '127.0.0.1';
const PORT = 1;

export async function refusedAddress(): Promise<string> {
  const code = await new Promise<string>((resolve) => {
    const s = net.connect({ host: HOST, port: PORT });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  if (code !== 'ECONNREFUSED') throw new Error(`${HOST}:${PORT} was meant to refuse connections, but the connect ended with ${code}`);
  return `${HOST}:${PORT}`;
}
