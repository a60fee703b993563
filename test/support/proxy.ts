// A CONNECT proxy on loopback that tunnels only to loopback, recording what it was asked for.
import { once } from 'node:events'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'

export interface Proxy {
  readonly url: string
  readonly connects: string[]
  close(): Promise<void>
}

export async function startConnectProxy(): Promise<Proxy> {
  const connects: string[] = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    connects.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    if (!['localhost', '127.0.0.1'].includes(host ?? '')) return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
    const upstream = net.connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client).pipe(upstream)
    })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => undefined).on('close', () => sockets.delete(socket))
    }
  })
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

/** A proxy that accepts TCP and never answers CONNECT (a stuck egress proxy); it only counts connections. */
export async function startSilentProxy(): Promise<Proxy> {
  const connects: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    connects.push('tcp')
    sockets.add(socket)
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket))
  })
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
