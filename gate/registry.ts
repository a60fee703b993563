import { checkFits } from './body-cost.ts'
import { ScanFiles, isCycloneDx, unreadCycloneDxVersion } from './cyclonedx.ts'
import type { SetAside } from './cyclonedx.ts'
import { availableMemory, bodyTooLarge } from './http.ts'
import { DIGEST_RE } from './input.ts'
import type { BodyLimits, Endpoint, HttpClient, RawResponse } from './io.ts'
import { describeJson, firstLine, isObject, parseJson, parseJsonBody } from './json.ts'
import { cut, escapeControls, redact } from './safe-text.ts'
import { MAX_CONFIG_FILE_BYTES, MIN_TOKEN_LENGTH, NoVerdictError, UsageError } from './vocabulary.ts'
import type { OciRef } from './vocabulary.ts'
import { classifyStatus, isBusyStatus, retryUntil } from './wait.ts'
import type { Peer, Step, Timing, WaitDeps } from './wait.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: a scan's published results in an OCI registry

export interface Credentials {
  readonly username: string
  readonly password: string
}

/** The host a Docker config key names: "host", "https://host/v1/", "host/path". */
export function registryHostOf(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .split('/', 1)[0]!
    .toLowerCase()
}

/**
 * The credentials a Docker config (config.json or a .dockerconfigjson) holds for a registry, from `auths`
 * (`auth` as base64 user:password, or username and password). Credential helpers cannot run in the gate's
 * image: a config that names one for the registry and holds nothing else for it is a usage error.
 */
export function credentialsFor(config: unknown, registry: string, origin: string): Credentials | undefined {
  if (!isObject(config))
    throw new UsageError(
      'REGISTRY_CONFIG',
      `${origin} is not a Docker config: expected {"auths": {"<registry>": {"auth": "<base64 user:password>"}}}`,
    )
  const host = registry.toLowerCase()
  const auths = isObject(config.auths) ? config.auths : {}
  for (const [key, entry] of Object.entries(auths)) {
    if (registryHostOf(key) !== host || !isObject(entry)) continue
    if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username)
      return { username: entry.username, password: entry.password }
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
      throw new UsageError('REGISTRY_CONFIG', `${origin}: the auth of ${key} is not base64 of user:password`)
    }
    if (typeof entry.identitytoken === 'string')
      throw new UsageError(
        'REGISTRY_CONFIG',
        `${origin}: ${key} holds an identity token, which the gate cannot use: give a user and password (or a robot ` +
          `account's token as the password)`,
      )
  }
  const helper =
    (isObject(config.credHelpers) && typeof config.credHelpers[host] === 'string'
      ? config.credHelpers[host]
      : undefined) ?? (typeof config.credsStore === 'string' ? config.credsStore : undefined)
  if (helper && !Object.keys(auths).some((key) => registryHostOf(key) === host)) {
    throw new UsageError(
      'REGISTRY_CONFIG',
      `${origin} sends ${registry} to the credential helper ${helper}, which the gate cannot run: give a config with ` +
        `the credentials in "auths" (as TAP's registry-credentials secret has)`,
    )
  }
  return undefined
}

/**
 * Every entry of a Docker config checked before the first request, so that a bad `auth` or a config of
 * credential helpers alone ends the run at once rather than after the scan was waited for: for `registry`
 * when it is known, for every registry the config names when it is not (--scan-result auto).
 */
export function checkDockerConfig(config: unknown, registry: string | undefined, origin: string): void {
  if (registry !== undefined) {
    credentialsFor(config, registry, origin)
    return
  }
  if (!isObject(config)) {
    credentialsFor(config, '', origin) // says it is not a Docker config
    return
  }
  const auths = isObject(config.auths) ? config.auths : {}
  const found = Object.keys(auths).filter((key) => credentialsFor(config, registryHostOf(key), origin) !== undefined)
  const helpers =
    typeof config.credsStore === 'string' ||
    (isObject(config.credHelpers) && Object.keys(config.credHelpers).length > 0)
  if (helpers && found.length === 0) {
    throw new UsageError(
      'REGISTRY_CONFIG',
      `${origin} holds no credentials, only credential helpers, which the gate cannot run: give a config with the ` +
        `credentials in "auths" (as TAP's registry-credentials secret has)`,
    )
  }
}

/** A WWW-Authenticate challenge: its scheme and parameters (realm, service, scope). */
export function parseChallenge(
  header: string | string[] | undefined,
): { scheme: string; params: Record<string, string> } | undefined {
  const text = (Array.isArray(header) ? header[0] : header)?.trim()
  const match = text ? /^([A-Za-z]+)\s*(.*)$/s.exec(text) : null
  if (!match) return undefined
  const params: Record<string, string> = {}
  for (const [, key, quoted, bare] of match[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    params[key!.toLowerCase()] = quoted?.replace(/\\(.)/g, '$1') ?? bare!
  return { scheme: match[1]!.toLowerCase(), params }
}

export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const
export const ACCEPT_MANIFESTS = Object.values(MANIFEST_TYPES).join(', ')

/** A blob a manifest names: its digest, size and media type, and the file name an artifact layer carries. */
export interface Descriptor {
  readonly digest: string
  readonly size: number
  readonly mediaType: string
  readonly title?: string
  /** An index entry's platform, os/architecture[/variant]. */
  readonly platform?: string
}

/** A manifest (its layers) or an index (its manifests), checked for the fields the gate relies on. */
export function manifestFrom(
  document: unknown,
  contentType: string,
  what: string,
): { kind: 'index' | 'manifest'; entries: Descriptor[] } {
  const fail = (detail: string) => new NoVerdictError('MALFORMED_RESPONSE', `${what} is malformed: ${detail}`)
  if (!isObject(document)) throw fail(`it is ${describeJson(document)}, not a manifest`)
  const mediaType = typeof document.mediaType === 'string' ? document.mediaType : contentType.split(';', 1)[0]!.trim()
  const isIndex =
    mediaType === MANIFEST_TYPES.ociIndex ||
    mediaType === MANIFEST_TYPES.dockerList ||
    (!('layers' in document) && Array.isArray(document.manifests))
  const key = isIndex ? 'manifests' : 'layers'
  if (!Array.isArray(document[key])) throw fail(`${key} is ${describeJson(document[key])}, expected a list`)
  const entries = (document[key] as unknown[]).map((entry, index): Descriptor => {
    if (!isObject(entry) || typeof entry.digest !== 'string' || !DIGEST_RE.test(entry.digest))
      throw fail(`${key}[${index}] has no sha256 digest`)
    if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0)
      throw fail(`${key}[${index}].size is ${describeJson(entry.size)}`)
    const annotations = isObject(entry.annotations) ? entry.annotations : {}
    const platform = isObject(entry.platform) ? entry.platform : {}
    const title =
      typeof annotations['org.opencontainers.image.title'] === 'string'
        ? annotations['org.opencontainers.image.title']
        : undefined
    return {
      digest: entry.digest.toLowerCase(),
      size: entry.size,
      mediaType: typeof entry.mediaType === 'string' ? entry.mediaType : '',
      ...(title ? { title } : {}),
      ...(platform.architecture === 'unknown' ? { title: 'attestation' } : {}),
      ...(typeof platform.os === 'string' && typeof platform.architecture === 'string'
        ? {
            platform: cut(
              escapeControls(
                [platform.os, platform.architecture, platform.variant]
                  .filter((part) => typeof part === 'string' && part)
                  .join('/'),
              ),
              40,
            ),
          }
        : {}),
    }
  })
  return { kind: isIndex ? 'index' : 'manifest', entries }
}

/** One regular file of a layer. */
export interface BundleFile {
  readonly name: string
  readonly content: Buffer
}

/**
 * A tar header's size field: octal digits (space- or NUL-terminated), or GNU's base-256 for large files (the
 * first byte's high bit set). Undefined for anything else, a negative base-256 number included: a size that
 * went backwards would read the same header forever.
 */
export function tarSize(field: Buffer): number | undefined {
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) return undefined
    let size = field[0]! & 0x7f
    for (let i = 1; i < field.length; i++) size = size * 256 + field[i]!
    return Number.isSafeInteger(size) ? size : undefined
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '')
  if (!/^[0-7]*$/.test(text)) return undefined
  const size = text ? Number.parseInt(text, 8) : 0
  return Number.isSafeInteger(size) ? size : undefined
}

/**
 * The regular files of a tar archive (ustar, with PAX and GNU long names). Each header's checksum is
 * checked: a layer that is not a tar is malformed, not silently empty. Sizes are checked too, so each
 * header moves at least one block on: the walk ends within the archive's length, whatever it says.
 */
export function filesOfTar(tar: Buffer, what: string): BundleFile[] {
  const files: BundleFile[] = []
  let longName: string | undefined
  for (let offset = 0; offset + 512 <= tar.length;) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start: number, length: number) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '')
    let checksum = 0
    for (let i = 0; i < 512; i++) checksum += i >= 148 && i < 156 ? 32 : header[i]!
    if (Number.parseInt(field(148, 8).trim(), 8) !== checksum)
      throw new NoVerdictError(
        'MALFORMED_RESPONSE',
        `${what} is not a tar archive (bad header checksum at byte ${offset})`,
      )
    const size = tarSize(header.subarray(124, 136))
    if (size === undefined)
      throw new NoVerdictError(
        'MALFORMED_RESPONSE',
        `${what} is not a tar archive (the size at byte ${offset + 124} is no non-negative number)`,
      )
    const start = offset + 512
    if (start + size > tar.length) throw new NoVerdictError('MALFORMED_RESPONSE', `${what} is a truncated tar archive`)
    const content = tar.subarray(start, start + size)
    const type = String.fromCharCode(header[156]!)
    const prefix = field(345, 155)
    const name = longName ?? `${prefix ? `${prefix}/` : ''}${field(0, 100)}`
    longName = undefined
    if (type === 'x') {
      const records = content.toString('utf8')
      // A PAX size would override the header's: the gate reads only archives whose header sizes are the sizes.
      if (/(?:^|\n)\d+ size=/.test(records))
        throw new NoVerdictError('MALFORMED_RESPONSE', `${what} has a PAX size record, which the gate does not read`)
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(records)?.[1]
    } else if (type === 'L') longName = content.toString('utf8').replace(/\0.*$/s, '')
    else if (type === '0' || type === '\0') files.push({ name: name.replace(/^\.?\/+/, ''), content })
    offset = start + Math.ceil(size / 512) * 512
  }
  return files
}

/** The registry's credentials (from the Docker config) and CA, read and checked. */
export interface RegistryAccess extends Endpoint, Timing {
  readonly dockerConfig?: { readonly document: unknown; readonly origin: string }
}

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** A scan result is one imgpkg layer, or a few artifact files: more is not a scan result, and each costs a request. */
export const MAX_LAYERS = 64
export const MAX_REDIRECTS = 5
/** Hashing and unpacking, loaded with the first scan result: no other run pays for them at start-up. */
export interface Codecs {
  readonly sha256: (bytes: Buffer) => string
  readonly gunzip: (bytes: Buffer, maxOutputLength: number) => Buffer
  readonly zstd: (bytes: Buffer, maxOutputLength: number) => Buffer
}

export async function loadCodecs(): Promise<Codecs> {
  const [{ createHash }, zlib] = await Promise.all([import('node:crypto'), import('node:zlib')])
  return {
    sha256: (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    gunzip: (bytes, maxOutputLength) => zlib.gunzipSync(bytes, { maxOutputLength }),
    zstd: (bytes, maxOutputLength) => zlib.zstdDecompressSync(bytes, { maxOutputLength }),
  }
}

/**
 * What a registry's answer means: the body, a wait (429, 5xx), or the end of the run with what to fix. Its
 * words reach the messages only through `quote`, which redacts them as they arrive (before anything is cut).
 */
export function classifyRegistryResponse(
  response: RawResponse,
  what: string,
  ref: OciRef,
  credentials: string | undefined,
  now: number,
  quote: (text: string) => string,
  action: 'pull' | 'push' = 'pull',
): Step<RawResponse> {
  const said = () =>
    `${ref.registry} answered ` +
    `${response.status}${describeRegistryError(quote(response.body.subarray(0, 4096).toString('utf8')))}`
  return classifyStatus<Step<RawResponse>>(response, now, {
    accept: () => ({ kind: 'accepted', value: response }),
    said,
    otherwise: () => refusedByRegistry(response.status, said(), what, ref, credentials, action),
  })
}

/** A registry's error body as ` (CODE: message)`, or its first line: the OCI distribution spec's `errors` list. */
function describeRegistryError(text: string): string {
  let detail = firstLine(text, 120)
  try {
    const error = (parseJson(text) as { errors?: Array<{ code?: unknown; message?: unknown }> }).errors?.[0]
    if (error) detail = `${String(error.code)}: ${firstLine(String(error.message), 120)}`
  } catch {}
  return detail ? ` (${detail})` : ''
}

/** A registry's 4xx (and anything else that is neither data nor busy): the end of the run, with what to fix. */
function refusedByRegistry(
  status: number,
  said: string,
  what: string,
  ref: OciRef,
  credentials: string | undefined,
  action: 'pull' | 'push',
): Step<RawResponse> {
  if (status === 401 || status === 403) {
    const fix = credentials
      ? `check the credentials for ${ref.registry} in ${credentials} and that they may ${action} ${ref.repository}`
      : `give credentials for ${ref.registry} with --registry-config (a .dockerconfigjson, as secret ` +
        `registry-credentials holds) or DOCKER_CONFIG`
    return { kind: 'fail', error: new NoVerdictError('REGISTRY_REJECTED', `${said} for ${what}: ${fix}`) }
  }
  const fix =
    action === 'push'
      ? `check that ${ref.registry} takes pushes to ${ref.repository}`
      : status === 404
        ? `check --scan-result: ${ref.reference} is not there (scan results are kept as long as the registry ` +
          'keeps them)'
        : 'check --scan-result names a registry'
  return { kind: 'fail', error: new NoVerdictError('REGISTRY_ERROR', `${said} for ${what}: ${fix}`) }
}

/**
 * The digest of `bytes` must be what the reference or manifest promised; anything else was changed on the way or at
 * rest.
 */
export function verifyDigest(codecs: Codecs, bytes: Buffer, expected: string, what: string): void {
  const actual = codecs.sha256(bytes)
  if (actual !== expected)
    throw new NoVerdictError(
      'DIGEST_MISMATCH',
      `${what} has digest ${actual}, not ${expected}: the registry or something between served other bytes than ` +
        `promised`,
    )
}

/**
 * A layer's files: a tar (plain, gzip or zstd, told by its first bytes), or one file named by its title.
 * `budget` is what the whole bundle may still unpack to (--max-body-size less the layers before): many small
 * layers that each unpack to the cap cannot add up past it.
 */
export function filesOfLayer(
  codecs: Codecs,
  blob: Buffer,
  layer: Descriptor,
  budget: number,
  maxBytes: number,
): { files: BundleFile[]; bytes: number } {
  const what = `layer ${layer.digest}`
  const tooLarge = bodyTooLarge(`the bundle, unpacked up to ${what},`, maxBytes)
  let tar: Buffer
  try {
    if (blob[0] === 0x1f && blob[1] === 0x8b) tar = codecs.gunzip(blob, budget)
    else if (blob.length >= 4 && blob.readUInt32LE(0) === 0xfd2fb528) tar = codecs.zstd(blob, budget)
    else tar = blob
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge()
    throw new NoVerdictError('MALFORMED_RESPONSE', `${what} cannot be unpacked (${(error as Error).message})`)
  }
  if (tar.length > budget) throw tooLarge()
  const isTar =
    layer.mediaType.includes('tar') || (tar.length >= 512 && tar.subarray(257, 262).toString('latin1') === 'ustar')
  return {
    files: isTar ? filesOfTar(tar, what) : [{ name: layer.title ?? layer.digest, content: tar }],
    bytes: tar.length,
  }
}

/**
 * What one file of a scan's results is: a CycloneDX document to judge, or something that holds no
 * vulnerability to judge, with the reason (imgpkg's metadata, an SPDX SBOM, XML named as such). Anything else
 * ends the run (exit 3) naming the file: JSON that does not parse (truncated), a CycloneDX version the gate
 * does not read, JSON of another kind, or a file of no format the gate knows. A byte order mark is tolerated.
 */
export function classifyScanFile(
  file: BundleFile,
  what: string,
  available: number,
): { readonly bom: Record<string, unknown> } | { readonly setAside: string } {
  if (file.name.startsWith('.imgpkg/')) return { setAside: "imgpkg's bundle metadata" }
  const fail = (problem: string) =>
    new NoVerdictError(
      'MALFORMED_RESPONSE',
      `${what} ${problem}: the gate cannot account for the vulnerabilities it may hold, so there is no verdict`,
    )
  const head = file.content
    .subarray(0, 64)
    .toString('utf8')
    .replace(/^\ufeff/, '')
    .trimStart()
  if (head.startsWith('<')) {
    if (/\.xml$/i.test(file.name))
      return {
        setAside:
          'XML, which the gate does not read (have the scanner write CycloneDX JSON: Trivy --format cyclonedx, Grype ' +
          '-o cyclonedx-json)',
      }
    throw fail('is XML not named .xml')
  }
  if (/^SPDXVersion:/.test(head)) return { setAside: 'an SPDX SBOM (tag-value): packages, no vulnerabilities' }
  if (!head.startsWith('{') && !head.startsWith('['))
    throw fail(
      `is neither CycloneDX JSON nor SPDX nor XML${/\.json$/i.test(file.name) ? ' (named .json, but not JSON)' : ''}`,
    )
  checkFits(file.content, available, what)
  let document: unknown
  try {
    document = parseJson(file.content.toString('utf8'))
  } catch (error) {
    throw fail(`is not JSON (${cut((error as Error).message, 80)}), perhaps truncated`)
  }
  const unread = unreadCycloneDxVersion(document)
  if (unread) throw fail(`is CycloneDX of specVersion ${unread}; the gate reads 1.4 to 1.7`)
  if (isCycloneDx(document)) return { bom: document }
  if (isObject(document) && typeof document.spdxVersion === 'string')
    return { setAside: 'an SPDX SBOM: packages, no vulnerabilities' }
  throw fail('is JSON, but neither CycloneDX nor SPDX')
}

/**
 * The CycloneDX files among a bundle's files, judged together, and the files set aside with their reasons.
 * None is no verdict (exit 3), saying what the bundle holds: the scan wrote another format, or nothing.
 */
export function scanFilesOf(files: readonly BundleFile[], ref: OciRef, available: () => number): ScanFiles {
  const scans: Array<{ name: string; bom: Record<string, unknown> }> = []
  const setAside: SetAside[] = []
  for (const file of files) {
    const kind = classifyScanFile(file, `${file.name} in ${ref.reference}`, available())
    if ('bom' in kind) scans.push({ name: file.name, bom: kind.bom })
    else setAside.push({ what: file.name, reason: kind.setAside })
  }
  if (scans.length) return new ScanFiles(scans, setAside)
  const others = setAside.filter((aside) => !aside.what.startsWith('.imgpkg/')).map((aside) => aside.what)
  const held = others.length
    ? `only ${others.slice(0, 10).join(', ')}${others.length > 10 ? ` and ${others.length - 10} more` : ''}`
    : 'no files'
  const hint = others.some((name) => /\.xml$/i.test(name))
    ? ': have the scanner write CycloneDX JSON (Trivy --format cyclonedx, Grype -o cyclonedx-json); XML is not read'
    : ': the scan wrote no CycloneDX JSON (Trivy --format cyclonedx, Grype -o cyclonedx-json)'
  throw new NoVerdictError('NO_SCAN_FILE', `${ref.reference} holds ${held}${hint}`)
}

/** One GET of the registry API, retried within the run's deadline: the answer's body, or the end of the run. */
export type RegistryGet = (path: string, accept: string, what: string, limits: BodyLimits) => Promise<RawResponse>

/** One request of any method (a push), retried within the deadline; answers with a status in `ok` are returned. */
export type RegistrySend = (request: {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT'
  /** A path of the registry, or a URL it gave (an upload's Location), which must be on its origin. */
  readonly target: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: Buffer
  readonly ok: readonly number[]
  readonly what: string
  readonly limits: BodyLimits
}) => Promise<RawResponse>

/** Where a push goes: the registry's answer to each request (retried within the deadline), and the repository. */
export interface PushTarget {
  readonly send: RegistrySend
  /** `host/repository`, where the image is and the attestations go. */
  readonly registry: string
  readonly repository: string
}

export const pushLimits = (what: string): BodyLimits => ({
  maxBytes: 4 * 1024 * 1024,
  tooLarge: () => new Error(`the registry's answer for ${what} is larger than 4 MiB`),
})

/** A blob of the repository: left as it is when the registry has it, else uploaded in one request (POST, then PUT). */
export async function pushBlob(target: PushTarget, bytes: Buffer, digest: string, what: string): Promise<void> {
  const { send, repository } = target
  const limits = pushLimits(what)
  const head = await send({ method: 'HEAD', target: `/v2/${repository}/blobs/${digest}`, ok: [200, 404], what, limits })
  if (head.status === 200) return
  const started = await send({ method: 'POST', target: `/v2/${repository}/blobs/uploads/`, ok: [202], what, limits })
  const location = started.headers.location
  if (typeof location !== 'string' || !location)
    throw new Error(`${target.registry} started the upload of ${what} without a Location to send it to`)
  const url = new URL(location, `https://${target.registry}`)
  url.searchParams.set('digest', digest)
  await send({
    method: 'PUT',
    target: url.href,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
    ok: [201],
    what,
    limits,
  })
}

/** The OCI 1.1 empty descriptor, its bytes (`{}`) inline: the config of an artifact that has none. */
export const EMPTY_CONFIG = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
} as const

/**
 * An OCI 1.1 referrer of `subject` (opencontainers/distribution-spec spec.md, "Pushing Manifests with Subject"): the
 * blob and the empty config pushed, the artifact manifest put by its own digest. `acknowledged` is whether the registry
 * took it as a referrer (it answered OCI-Subject); one without the referrers API did not.
 */
export async function putReferrer(
  target: PushTarget,
  artifact: {
    readonly artifactType: string
    readonly blob: Buffer
    readonly layer: { readonly mediaType: string; readonly annotations: Readonly<Record<string, string>> }
    readonly subject: { readonly mediaType: string; readonly digest: string; readonly size: number }
    readonly annotations?: Readonly<Record<string, string>>
    readonly what: string
  },
): Promise<{ readonly digest: string; readonly size: number; readonly acknowledged: boolean }> {
  const sha256 = (await loadCodecs()).sha256
  const blobDigest = sha256(artifact.blob)
  await pushBlob(target, artifact.blob, blobDigest, artifact.what)
  await pushBlob(target, Buffer.from('{}'), EMPTY_CONFIG.digest, 'the empty config')
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPES.ociManifest,
      artifactType: artifact.artifactType,
      config: EMPTY_CONFIG,
      layers: [{ ...artifact.layer, digest: blobDigest, size: artifact.blob.length }],
      subject: artifact.subject,
      ...(artifact.annotations ? { annotations: artifact.annotations } : {}),
    }),
  )
  const digest = sha256(manifest)
  const put = await target.send({
    method: 'PUT',
    target: `/v2/${target.repository}/manifests/${digest}`,
    headers: { 'content-type': MANIFEST_TYPES.ociManifest },
    body: manifest,
    ok: [201],
    what: `the referrer of ${artifact.subject.digest}`,
    limits: pushLimits(artifact.what),
  })
  return { digest, size: manifest.length, acknowledged: Boolean(put.headers['oci-subject']) }
}

/**
 * The registry as the gate talks to it (go-containerregistry's `transport`, in small): anonymous first; a 401's
 * challenge says whether to send Basic credentials or fetch a bearer token for them, over https only;
 * redirects followed over https with credentials kept to the registry's origin; every answer read by
 * classifyRegistryResponse and retried by the one loop. Credentials and tokens join `secrets`; `quote` is what
 * may be said of the registry's own words.
 */
export function registryTransport(
  ref: OciRef,
  access: RegistryAccess,
  client: HttpClient,
  deps: Omit<WaitDeps, 'fetch'>,
  secrets: string[],
  action: 'pull' | 'push' = 'pull',
): { get: RegistryGet; send: RegistrySend; quote: (text: string) => string } {
  const credentials = access.dockerConfig
    ? credentialsFor(access.dockerConfig.document, ref.registry, access.dockerConfig.origin)
    : undefined
  const credentialsOrigin = credentials ? access.dockerConfig!.origin : undefined
  // Every secret this registry and its token service hold, short ones too; only those long enough to redact
  // without cutting into ordinary words join the run's redaction list.
  const held: string[] = []
  const hold = (secret: string) => {
    held.push(secret)
    if (secret.length >= MIN_TOKEN_LENGTH) secrets.push(secret)
  }
  if (credentials) {
    hold(credentials.password)
    hold(Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64'))
  }
  /**
   * What may be quoted of the registry's or the token service's words: redacted first; nothing at all while a secret
   * too short to redact is held.
   */
  const quote = (text: string) => (held.some((secret) => secret.length < MIN_TOKEN_LENGTH) ? '' : redact(text, held))
  const base = new URL(`https://${ref.registry}`)
  const peer: Peer & Timing = {
    ...access,
    baseUrl: base,
    hints: {
      name: `the registry ${ref.registry}`,
      tls: access.ca
        ? `${access.ca.origin} is not the CA of ${ref.registry}, or ${ref.registry} is not in its certificate`
        : `in the Task, put the registry's CA in ConfigMap amr-policy-gate-registry-ca (key ca.crt) and set param ` +
          `registry-ca-file to /etc/amr-policy-gate-registry-ca/ca.crt; elsewhere give it with --registry-ca-cert ` +
          `(POLICY_REGISTRY_CA_CERT)`,
      dns: '--scan-result',
    },
  }
  let authorization: string | undefined

  /** A bearer token for the challenge's realm, service and scope; Basic credentials go to the realm only over https. */
  async function authenticate(
    challenge: NonNullable<ReturnType<typeof parseChallenge>>,
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const basic = credentials
      ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
      : undefined
    if (challenge.scheme === 'basic') return basic
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined
    let realm: URL
    try {
      realm = new URL(challenge.params.realm)
    } catch {
      throw new NoVerdictError(
        'REGISTRY_ERROR',
        `${ref.registry} names a token service that is not a URL: ${firstLine(quote(challenge.params.realm), 120)}`,
      )
    }
    if (realm.protocol !== 'https:')
      throw new NoVerdictError(
        'REGISTRY_ERROR',
        `${ref.registry} sends the gate to a token service over ${realm.protocol.slice(0, -1)} (${realm.origin}): ` +
          `credentials only go over https`,
      )
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.set(
      'scope',
      challenge.params.scope ?? `repository:${ref.repository}:${action === 'push' ? 'pull,push' : 'pull'}`,
    )
    const limits: BodyLimits = {
      maxBytes: MAX_CONFIG_FILE_BYTES,
      tooLarge: bodyTooLarge(`the token from ${realm.origin}`, MAX_CONFIG_FILE_BYTES),
    }
    const response = await client.get(
      realm,
      basic ? { authorization: basic, accept: 'application/json' } : { accept: 'application/json' },
      signal,
      limits,
    )
    if (isBusyStatus(response.status))
      throw Object.assign(new Error(`the token service ${realm.origin} answered ${response.status}`), {
        code: `HTTP_${response.status}`,
      })
    if (response.status !== 200) {
      const fix = credentialsOrigin
        ? `check the credentials for ${ref.registry} in ${credentialsOrigin}`
        : `give credentials for ${ref.registry} with --registry-config or DOCKER_CONFIG`
      throw new NoVerdictError(
        'REGISTRY_REJECTED',
        `the token service ${realm.origin} of ${ref.registry} answered ${response.status}: ${fix}`,
      )
    }
    const answer = parseJsonBody(
      response.body.toString('utf8'),
      `the token service ${realm.origin} answered 200 with a body that`,
      quote,
    )
    const token = isObject(answer)
      ? (typeof answer.token === 'string' && answer.token) ||
        (typeof answer.access_token === 'string' && answer.access_token)
      : undefined
    if (!token)
      throw new NoVerdictError('MALFORMED_RESPONSE', `the token service ${realm.origin} answered without a token`)
    hold(token)
    return `Bearer ${token}`
  }

  /**
   * One request, authenticating on a 401 challenge; a GET follows redirects (credentials stay with the registry's
   * origin), any other method is sent to the registry's origin only.
   */
  async function exchange(
    request: Pick<Parameters<RegistrySend>[0], 'method' | 'target' | 'headers' | 'body'>,
    signal: AbortSignal,
    limits: BodyLimits,
  ): Promise<RawResponse> {
    let url = new URL(request.target, base)
    if (request.method !== 'GET' && url.origin !== base.origin)
      throw new NoVerdictError(
        'REGISTRY_ERROR',
        `${ref.registry} sent the upload to ${quote(url.origin)}, another origin: the gate pushes to the registry only`,
      )
    const send = (target: URL) => {
      const headers = {
        ...request.headers,
        ...(authorization && target.origin === base.origin ? { authorization } : {}),
      }
      return request.method === 'GET'
        ? client.get(target, headers, signal, limits)
        : client.send(request.method, target, headers, request.body, signal, limits)
    }
    let response = await send(url)
    if (response.status === 401 && url.origin === base.origin) {
      const challenge = parseChallenge(response.headers['www-authenticate'])
      const granted = challenge ? await authenticate(challenge, signal) : undefined
      if (granted && granted !== authorization) {
        authorization = granted
        response = await send(url)
      }
    }
    for (
      let hops = 0;
      request.method === 'GET' && response.status >= 300 && response.status < 400 && response.headers.location;
      hops++
    ) {
      if (hops === MAX_REDIRECTS)
        throw new NoVerdictError('REGISTRY_ERROR', `${ref.registry} redirected more than ${MAX_REDIRECTS} times`)
      url = new URL(String(response.headers.location), url)
      if (url.protocol !== 'https:')
        throw new NoVerdictError(
          'REGISTRY_ERROR',
          `${ref.registry} redirected to ${url.protocol.slice(0, -1)} (${quote(url.origin)}): only https is followed`,
        )
      response = await send(url)
    }
    return response
  }

  const get: RegistryGet = async (path, accept, what, limits) =>
    (await retryUntil(
      {
        what,
        timeoutHint: `Check that ${ref.registry} is reachable from here`,
        // Never "not yet": a 404 ends the run (classifyRegistryResponse), and a read that went through at once is not
        // worth a line.
        onNotFound: 'absent',
        attempt: async (signal) =>
          classifyRegistryResponse(
            await exchange({ method: 'GET', target: path, headers: { accept } }, signal, limits),
            what,
            ref,
            credentialsOrigin,
            deps.now(),
            quote,
          ),
      },
      peer,
      deps,
    ))!
  const send: RegistrySend = async (request) =>
    (await retryUntil(
      {
        what: request.what,
        timeoutHint: `Check that ${ref.registry} is reachable from here`,
        onNotFound: 'absent',
        attempt: async (signal) => {
          const response = await exchange(request, signal, request.limits)
          if (request.ok.includes(response.status)) return { kind: 'accepted', value: response }
          if (response.status >= 200 && response.status < 300)
            return {
              kind: 'fail',
              error: new NoVerdictError(
                'REGISTRY_ERROR',
                `${ref.registry} answered ${response.status} for ${request.what}, not ${request.ok.join(' or ')}`,
              ),
            }
          return classifyRegistryResponse(response, request.what, ref, credentialsOrigin, deps.now(), quote, action)
        },
      },
      peer,
      deps,
    ))!
  return { get, send, quote }
}

/**
 * The images a reference names, each with its layers, and what was set aside (go-containerregistry's `remote` fetcher,
 * for manifests).
 */
interface ManifestTree {
  readonly images: ReadonlyArray<{ readonly prefix: string; readonly layers: readonly Descriptor[] }>
  readonly setAside: readonly SetAside[]
  /** The digest of the reference's own manifest, as read. */
  readonly digest: string
}

/**
 * The manifest of `ref`, each verified against its digest (the reference's, or Docker-Content-Digest): an index
 * is read whole, every image's files judged together (one verdict), never its first image alone; attestation
 * manifests are set aside. Files of several images are named by platform (`linux/arm64: scan.cdx.json`).
 */
export async function readManifests(
  ref: OciRef,
  get: RegistryGet,
  quote: (text: string) => string,
  codecs: Codecs,
): Promise<ManifestTree> {
  const limits: BodyLimits = { maxBytes: MAX_MANIFEST_BYTES, tooLarge: bodyTooLarge('a manifest', MAX_MANIFEST_BYTES) }
  const readManifest = async (reference: string, expected: string | undefined, what: string) => {
    const response = await get(`/v2/${ref.repository}/manifests/${reference}`, ACCEPT_MANIFESTS, what, limits)
    const promised =
      expected ??
      (typeof response.headers['docker-content-digest'] === 'string'
        ? response.headers['docker-content-digest'].trim().toLowerCase()
        : undefined)
    if (promised) verifyDigest(codecs, response.body, promised, what)
    const document = parseJsonBody(response.body.toString('utf8'), `${what} is a body that`, quote)
    return { ...manifestFrom(document, String(response.headers['content-type'] ?? ''), what), read: response.body }
  }
  const top = await readManifest(ref.tagOrDigest, ref.digest, `the manifest of ${ref.reference}`)
  const digest = codecs.sha256(top.read)
  if (top.kind !== 'index') return { images: [{ prefix: '', layers: top.entries }], setAside: [], digest }
  if (top.entries.length > MAX_LAYERS)
    throw new NoVerdictError(
      'MALFORMED_RESPONSE',
      `${ref.reference} is an index of ${top.entries.length} manifests; at most ${MAX_LAYERS} are read`,
    )
  const setAside: SetAside[] = []
  const images: Array<ManifestTree['images'][number]> = []
  const named = top.entries.filter((entry) => entry.title !== 'attestation')
  for (const entry of top.entries) {
    if (entry.title === 'attestation') {
      setAside.push({
        what: `manifest ${entry.digest}`,
        reason: 'an attestation manifest of the index (provenance or an SBOM of the build), not a scan',
      })
      continue
    }
    const what = `the manifest ${entry.digest} of ${ref.reference}`
    const manifest = await readManifest(entry.digest, entry.digest, what)
    if (manifest.kind === 'index')
      throw new NoVerdictError(
        'MALFORMED_RESPONSE',
        `${ref.reference} is an index of an index, which a scan result never is`,
      )
    images.push({
      prefix: named.length > 1 ? `${entry.platform ?? entry.digest.slice(0, 19)}: ` : '',
      layers: manifest.entries,
    })
  }
  if (!images.length) throw new NoVerdictError('NO_SCAN_FILE', `${ref.reference} is an index of no images`)
  return { images, setAside, digest }
}

/**
 * Every layer of every image, each verified against its digest and size and unpacked within --max-body-size for all of
 * them together.
 */
export async function readLayers(
  ref: OciRef,
  { images }: ManifestTree,
  get: RegistryGet,
  codecs: Codecs,
  maxBytes: number,
  blocking: WaitDeps['blocking'],
): Promise<BundleFile[]> {
  const layers = images.flatMap((image) => image.layers)
  if (layers.length > MAX_LAYERS)
    throw new NoVerdictError(
      'MALFORMED_RESPONSE',
      `${ref.reference} has ${layers.length} layers; a scan result has a few (an imgpkg bundle one): at most ` +
        `${MAX_LAYERS} are read`,
    )
  const total = layers.reduce((sum, layer) => sum + layer.size, 0)
  if (total > maxBytes) throw bodyTooLarge(`${ref.reference} (${layers.length} layers, ${total} bytes)`, maxBytes)()
  const files: BundleFile[] = []
  let unpacked = 0
  for (const { prefix, layers: imageLayers } of images) {
    for (const layer of imageLayers) {
      const what = `layer ${layer.digest} of ${ref.reference}`
      const limits: BodyLimits = {
        maxBytes: layer.size,
        tooLarge: () =>
          new NoVerdictError('DIGEST_MISMATCH', `${what} is larger than the ${layer.size} bytes its manifest says`),
      }
      const blob = await get(`/v2/${ref.repository}/blobs/${layer.digest}`, '*/*', what, limits)
      verifyDigest(codecs, blob.body, layer.digest, what)
      const layerFiles = blocking(() => filesOfLayer(codecs, blob.body, layer, maxBytes - unpacked, maxBytes))
      unpacked += layerFiles.bytes
      for (const file of layerFiles.files)
        files.push(prefix ? { name: `${prefix}${file.name}`, content: file.content } : file)
    }
  }
  return files
}

/**
 * Reads a scan's published results (an imgpkg bundle, or any OCI artifact) through the registry API: the
 * manifests (readManifests), the layers (readLayers), then every file judged or set aside (scanFilesOf).
 */
export async function readScanResult(
  ref: OciRef,
  access: RegistryAccess,
  client: HttpClient,
  deps: Omit<WaitDeps, 'fetch'>,
  maxBytes: number,
  secrets: string[],
): Promise<ScanFiles> {
  const codecs = await loadCodecs()
  const { get, quote } = registryTransport(ref, access, client, deps, secrets)
  const tree = await readManifests(ref, get, quote, codecs)
  const files = await readLayers(ref, tree, get, codecs, maxBytes, deps.blocking)
  const scans = deps.blocking(() => scanFilesOf(files, ref, availableMemory))
  const result = tree.setAside.length ? new ScanFiles(scans.files, [...tree.setAside, ...scans.setAside]) : scans
  result.source = { uri: `${ref.registry}/${ref.repository}@${tree.digest}`, sha256: tree.digest.slice(7) }
  return result
}
