// Peer for the bench: @fastify/http-proxy (undici underneath) with its defaults and logging off.
// Usage: node dist/bench/peers/fastify-proxy.js http://127.0.0.1:PORT
import fastifyProxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: fastify-proxy.js TARGET_URL');
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
await app.register(fastifyProxy, { upstream });
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ msg: 'listening', listener: 'fastify-proxy', address: address.replace(/^http:\/\//, '') })}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
