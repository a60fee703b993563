// A real registry for the tests: Debian's docker-registry (the CNCF distribution registry 2.8) on loopback,
// with TLS from a CA made here and either htpasswd (Basic) auth or token auth, whose token service is a small
// HTTPS server of the test's (distribution checks the tokens it signs, as it would Harbor's or Docker Hub's).
// Artifacts are pushed through the registry API itself, in the layout imgpkg gives a scan's results.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { http, HttpResponse } from 'msw'
import { Agent, request } from 'undici'
import { makeTls, startSimulator, type Simulator, type Tls } from './simulator.ts'

const run = promisify(execFile)

export const REGISTRY_USER = 'scanner'
export const REGISTRY_PASSWORD = 'registry-secret-never-printed-7f3a'

/** Whether Debian's docker-registry and htpasswd are installed; under CI their absence fails the run. */
export async function missingRegistryTools(tools = ['docker-registry', 'htpasswd']): Promise<string[]> {
  const missing = (
    await Promise.all(
      tools.map((tool) =>
        run('sh', ['-c', `command -v ${tool}`]).then(
          () => '',
          () => tool,
        ),
      ),
    )
  ).filter(Boolean)
  if (missing.length) {
    const message = `registry tests need ${missing.join(', ')} (scripts/dev.sh test installs them from Debian).`
    if (process.env.CI) throw new Error(`${message} Under CI this is a failure, not a skip.`)
    console.warn(`WARNING: ${message} Skipping them.`)
  }
  return missing
}

export interface Registry {
  /** 127.0.0.1:PORT */
  readonly host: string
  readonly tls: Tls
  /** Basic credentials of REGISTRY_USER, for the test's own pushes. */
  readonly auth: string
  /** Requests the token service answered, when there is one. */
  readonly tokenRequests: Array<{ authorization: string | null; scope: string | null }>
  /** Pushes the artifact; returns the digest of what the tag names and the layers' digests. */
  push(repository: string, tag: string, artifact: Artifact): Promise<{ digest: string; layers: string[] }>
  /**
   * Pushes one manifest per platform and an OCI index of them all (an `unknown/unknown` platform is how BuildKit marks
   * attestations).
   */
  pushIndex(
    repository: string,
    tag: string,
    images: ReadonlyArray<{ readonly os: string; readonly architecture: string; readonly layers: readonly Layer[] }>,
  ): Promise<{ digest: string }>
  /** A blob's bytes replaced on disk behind the registry's back (it then serves other bytes than its digest). */
  corruptBlob(digest: string): void
  /** GET of a registry path with the test's own pull and push rights: what a verifier such as cosign reads. */
  read(repository: string, path: string, accept?: string): Promise<{ status: number; body: Buffer }>
  close(): Promise<void>
}

/** One layer: files to tar (and gzip unless `compress: false`), or raw bytes as an artifact layer with a title. */
export type Layer =
  | { readonly files: Record<string, string | Buffer>; readonly compress?: boolean }
  | { readonly raw: Buffer; readonly mediaType: string; readonly title: string }

export interface Artifact {
  readonly layers: readonly Layer[]
  /** Wrap the manifest in an OCI index (as a multi-platform push does). */
  readonly index?: boolean
}

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  return port
}

/** A ustar header for one regular file, its size field as given (a test may make it lie), with a valid checksum. */
export function ustarHeader(name: string, size: string | Buffer): Buffer {
  const header = Buffer.alloc(512)
  header.write(name, 0, 100, 'utf8')
  header.write('0000644\0', 100)
  header.write('0000000\0', 108)
  header.write('0000000\0', 116)
  if (typeof size === 'string') header.write(size.padEnd(12, '\0').slice(0, 12), 124, 'latin1')
  else size.copy(header, 124, 0, 12)
  header.write('00000000000\0', 136)
  header.write('        ', 148)
  header.write('0', 156)
  header.write('ustar\0', 257)
  header.write('00', 263)
  let sum = 0
  for (const byte of header) sum += byte
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  return header
}

/** An uncompressed ustar archive of the files. */
export function tarOf(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = []
  for (const [name, value] of Object.entries(files)) {
    const content = typeof value === 'string' ? Buffer.from(value) : value
    blocks.push(
      ustarHeader(name, `${content.length.toString(8).padStart(11, '0')}\0`),
      content,
      Buffer.alloc((512 - (content.length % 512)) % 512),
    )
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`
const base64url = (value: string | Buffer) => Buffer.from(value).toString('base64url')

/**
 * Starts docker-registry. `auth: 'basic'` uses htpasswd; `auth: 'token'` points the registry at a token
 * service of the test that grants pull and push to REGISTRY_USER (Basic) and pull to anyone (`anonymousPull`).
 */
export async function startRegistry(
  auth: 'basic' | 'token',
  options: { anonymousPull?: boolean } = {},
): Promise<Registry> {
  const work = mkdtempSync(join(tmpdir(), 'registry-test-'))
  const tls = await makeTls('Registry Test CA')
  const host = `127.0.0.1:${await freePort()}`
  writeFileSync(join(work, 'registry.crt'), tls.cert)
  writeFileSync(join(work, 'registry.key'), tls.key)
  const tokenRequests: Registry['tokenRequests'] = []
  let tokenService: Simulator | undefined
  let authConfig: string
  const basic = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_PASSWORD}`).toString('base64')}`
  if (auth === 'basic') {
    const { stdout } = await run('htpasswd', ['-Bbn', REGISTRY_USER, REGISTRY_PASSWORD])
    writeFileSync(join(work, 'htpasswd'), stdout)
    authConfig = `  htpasswd:\n    realm: registry-test\n    path: ${work}/htpasswd\n`
  } else {
    // The token service signs with a key whose certificate the registry trusts (rootcertbundle); the
    // certificate travels in the token's x5c header, as distribution verifies it.
    const signer = await makeTls('Token Signer')
    writeFileSync(join(work, 'token-signer.crt'), signer.caCert)
    const signerKey = createPrivateKey(signer.caKey)
    const x5c = [new X509Certificate(signer.caCert).raw.toString('base64')]
    tokenService = await startSimulator(
      [
        http.get('/token', ({ request: incoming }) => {
          const query = new URL(incoming.url).searchParams
          const authorization = incoming.headers.get('authorization')
          tokenRequests.push({ authorization, scope: query.get('scope') })
          if (authorization !== null && authorization !== basic)
            return HttpResponse.json({ details: 'bad credentials' }, { status: 401 })
          if (authorization === null && !options.anonymousPull)
            return HttpResponse.json({ details: 'credentials required' }, { status: 401 })
          const [, name = '', actions = ''] = (query.get('scope') ?? '').split(':')
          const granted = actions
            .split(',')
            .filter((action) => action === 'pull' || (action === 'push' && authorization !== null))
          const now = Math.floor(Date.now() / 1000)
          const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c }))
          const claims = base64url(
            JSON.stringify({
              iss: 'test-issuer',
              sub: authorization ? REGISTRY_USER : '',
              aud: 'test-registry',
              exp: now + 300,
              nbf: now - 10,
              iat: now,
              jti: randomUUID(),
              access: [{ type: 'repository', name, actions: granted }],
            }),
          )
          const signature = sign('sha256', Buffer.from(`${header}.${claims}`), {
            key: signerKey,
            dsaEncoding: 'ieee-p1363',
          })
          return HttpResponse.json({ token: `${header}.${claims}.${base64url(signature)}`, expires_in: 300 })
        }),
      ],
      tls,
    )
    authConfig =
      `  token:\n    realm: ${tokenService.url}/token\n    service: test-registry\n    issuer: ` +
      `test-issuer\n    rootcertbundle: ${work}/token-signer.crt\n`
  }
  writeFileSync(
    join(work, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/data\n  delete:\n    ` +
      `enabled: true\nhttp:\n  addr: ${host}\n  tls:\n    certificate: ${work}/registry.crt\n    key: ` +
      `${work}/registry.key\nauth:\n${authConfig}`,
  )
  const registry: ChildProcess = spawn('docker-registry', ['serve', join(work, 'config.yml')], { stdio: 'ignore' })
  const client = new Agent({ connect: { ca: tls.caCert } })
  for (let attempt = 0; ; attempt++) {
    const answered = await request(`https://${host}/v2/`, { dispatcher: client }).then(
      (response) => response.statusCode,
      () => 0,
    )
    if (answered === 401) break
    if (attempt > 50) throw new Error(`docker-registry did not start on ${host}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  /** The Authorization header for a push: Basic, or a token for push and pull on the repository. */
  async function pushAuth(repository: string): Promise<string> {
    if (!tokenService) return basic
    const response = await request(
      `${tokenService.url}/token?service=test-registry&scope=repository:${repository}:pull,push`,
      { dispatcher: client, headers: { authorization: basic } },
    )
    return `Bearer ${((await response.body.json()) as { token: string }).token}`
  }

  async function call(
    method: 'GET' | 'POST' | 'PUT' | 'HEAD',
    url: string,
    authorization: string,
    body?: Buffer,
    contentType?: string,
  ) {
    const response = await request(url.startsWith('https://') ? url : `https://${host}${url}`, {
      dispatcher: client,
      method,
      headers: { authorization, ...(contentType ? { 'content-type': contentType } : {}) },
      ...(body ? { body } : {}),
    })
    const text = await response.body.text()
    if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.statusCode} ${text}`)
    return response
  }

  async function pushBlob(repository: string, authorization: string, bytes: Buffer): Promise<string> {
    const digest = digestOf(bytes)
    const started = await call('POST', `/v2/${repository}/blobs/uploads/`, authorization)
    const location = new URL(String(started.headers.location), `https://${host}`)
    location.searchParams.set('digest', digest)
    await call('PUT', location.href, authorization, bytes, 'application/octet-stream')
    return digest
  }

  /** Pushes the layers and an imgpkg-like config; returns the manifest (not yet put) and its digest. */
  async function pushManifest(repository: string, authorization: string, artifactLayers: readonly Layer[]) {
    const layers = []
    for (const layer of artifactLayers) {
      if ('raw' in layer) {
        layers.push({
          mediaType: layer.mediaType,
          digest: await pushBlob(repository, authorization, layer.raw),
          size: layer.raw.length,
          annotations: { 'org.opencontainers.image.title': layer.title },
        })
        continue
      }
      const tar = tarOf(layer.files)
      const bytes = layer.compress === false ? tar : gzipSync(tar)
      const mediaType =
        layer.compress === false
          ? 'application/vnd.oci.image.layer.v1.tar'
          : 'application/vnd.docker.image.rootfs.diff.tar.gzip'
      layers.push({ mediaType, digest: await pushBlob(repository, authorization, bytes), size: bytes.length })
    }
    // imgpkg's bundle image: a config labelled dev.carvel.imgpkg.bundle.
    const config = Buffer.from(
      JSON.stringify({
        architecture: '',
        os: '',
        config: { Labels: { 'dev.carvel.imgpkg.bundle': '' } },
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    )
    const configDigest = await pushBlob(repository, authorization, config)
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          digest: configDigest,
          size: config.length,
        },
        layers,
      }),
    )
    return { manifest, manifestDigest: digestOf(manifest), pushed: layers.map((layer) => layer.digest) }
  }

  const indexOf = (entries: ReadonlyArray<{ digest: string; size: number; os: string; architecture: string }>) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: entries.map(({ digest, size, os, architecture }) => ({
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest,
          size,
          platform: { os, architecture },
        })),
      }),
    )

  return {
    host,
    tls,
    auth: basic,
    tokenRequests,
    async push(repository, tag, artifact) {
      const authorization = await pushAuth(repository)
      const { manifest, manifestDigest, pushed } = await pushManifest(repository, authorization, artifact.layers)
      await call(
        'PUT',
        `/v2/${repository}/manifests/${artifact.index ? manifestDigest : tag}`,
        authorization,
        manifest,
        'application/vnd.docker.distribution.manifest.v2+json',
      )
      if (!artifact.index) return { digest: manifestDigest, layers: pushed }
      const index = indexOf([{ digest: manifestDigest, size: manifest.length, os: 'linux', architecture: 'amd64' }])
      await call(
        'PUT',
        `/v2/${repository}/manifests/${tag}`,
        authorization,
        index,
        'application/vnd.oci.image.index.v1+json',
      )
      return { digest: digestOf(index), layers: pushed }
    },
    async pushIndex(repository, tag, images) {
      const authorization = await pushAuth(repository)
      const entries = []
      for (const image of images) {
        const { manifest, manifestDigest } = await pushManifest(repository, authorization, image.layers)
        await call(
          'PUT',
          `/v2/${repository}/manifests/${manifestDigest}`,
          authorization,
          manifest,
          'application/vnd.docker.distribution.manifest.v2+json',
        )
        entries.push({ digest: manifestDigest, size: manifest.length, os: image.os, architecture: image.architecture })
      }
      const index = indexOf(entries)
      await call(
        'PUT',
        `/v2/${repository}/manifests/${tag}`,
        authorization,
        index,
        'application/vnd.oci.image.index.v1+json',
      )
      return { digest: digestOf(index) }
    },
    async read(repository, path, accept) {
      const response = await request(`https://${host}${path}`, {
        dispatcher: client,
        headers: { authorization: await pushAuth(repository), ...(accept ? { accept } : {}) },
      })
      return { status: response.statusCode, body: Buffer.from(await response.body.arrayBuffer()) }
    },
    corruptBlob(digest) {
      const hex = digest.slice('sha256:'.length)
      const path = join(work, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')
      writeFileSync(path, 'not the bytes the digest names')
    },
    async close() {
      registry.kill()
      await once(registry, 'exit').catch(() => undefined)
      await tokenService?.close()
      await client.close()
      rmSync(work, { recursive: true, force: true })
    },
  }
}
