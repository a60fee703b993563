// Proxies on loopback for the proxy tests: a CONNECT proxy that tunnels only to loopback (or misbehaves on
// purpose), recording what it was asked for, and one that accepts TCP and never answers (a stuck egress proxy).
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'

export interface Proxy {
  readonly url: string
  readonly connects: string[]
  close(): Promise<void>
}

/** Listens on loopback; closing destroys every socket the proxy still holds. */
async function listen(server: net.Server, sockets: Set<net.Socket>, connects: string[]): Promise<Proxy> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

function track(sockets: Set<net.Socket>, socket: net.Socket): void {
  sockets.add(socket)
  socket.on('error', () => undefined).on('close', () => sockets.delete(socket))
}

/** What a proxy does with every CONNECT: tunnel (to loopback only), after a pause, or misbehave. */
export type ProxyBehaviour = 'tunnel' | 'slow-accept' | 'silent' | 'refuse' | 'hang-up' | 'garbage'

/** A CONNECT proxy on loopback that records what it was asked for and tunnels only to loopback. */
export async function startConnectProxy(behaviour: ProxyBehaviour = 'tunnel'): Promise<Proxy> {
  const connects: string[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '')
    track(sockets, client)
    const [host, port] = (req.url ?? '').split(':')
    if (behaviour === 'silent') return
    if (behaviour === 'refuse' || !['localhost', '127.0.0.1'].includes(host ?? ''))
      return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
    if (behaviour === 'hang-up') return void client.destroy()
    if (behaviour === 'garbage') return void client.end('\x00\xff not http at all\r\n\r\n')
    const tunnel = () => {
      const upstream = net.connect(Number(port), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        upstream.write(head)
        upstream.pipe(client).pipe(upstream)
      })
      track(sockets, upstream)
    }
    if (behaviour === 'slow-accept') setTimeout(tunnel, 500)
    else tunnel()
  })
  return listen(server, sockets, connects)
}

/** A proxy that accepts TCP and never answers CONNECT; it only counts connections. */
export async function startSilentProxy(): Promise<Proxy> {
  const connects: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    connects.push('tcp')
    track(sockets, socket)
  })
  return listen(server, sockets, connects)
}
