// Attaches an SBOM to one architecture's image of a pushed index as an OCI 1.1 referrer: an artifact manifest
// (artifactType application/vnd.cyclonedx+json, the empty config, the SBOM as its one layer) whose `subject` is
// that image, pushed through the registry API; where the registry has no referrers API (distribution 2.8), also
// under the fallback tag sha256-<subject hex> as an index of its referrers (OCI distribution spec 1.1). Credentials
// from the Docker config (Basic, or a Bearer token for them), the CA from /etc/docker/certs.d/HOST/ca.crt.
//   node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE   prints the artifact's digest
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { parseJson } from '../gate/json.ts'
import { credentialsFor, parseChallenge } from '../gate/registry.ts'

const [repository, indexDigest, arch, sbomFile] = process.argv.slice(2)
if (!repository || !indexDigest || !arch || !sbomFile) {
  console.error('usage: node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE')
  process.exit(2)
}
const host = repository.slice(0, repository.indexOf('/'))
const path = repository.slice(repository.indexOf('/') + 1)
const caFile = `/etc/docker/certs.d/${host}/ca.crt`
const dispatcher = new Agent({ connect: existsSync(caFile) ? { ca: readFileSync(caFile, 'utf8') } : {} })
const configFile = join(process.env.DOCKER_CONFIG ?? join(process.env.HOME ?? '/root', '.docker'), 'config.json')
// The gate's own reading of a Docker config: any spelling of the host's key, auth or username and password.
const credentials = existsSync(configFile)
  ? credentialsFor(parseJson(readFileSync(configFile, 'utf8')), host, configFile)
  : undefined
const basic = credentials
  ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
  : undefined
let authorization = basic

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const EMPTY = {
  mediaType: 'application/vnd.oci.empty.v1+json',
  digest: digestOf(Buffer.from('{}')),
  size: 2,
  data: 'e30=',
}
const SBOM_TYPE = 'application/vnd.cyclonedx+json'

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** One call to the registry API; a Bearer challenge is answered once with a token for pull and push. */
async function call(
  method: 'GET' | 'HEAD' | 'POST' | 'PUT',
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer,
) {
  const send = () =>
    request(url.startsWith('https://') ? url : `https://${host}${url}`, {
      method,
      dispatcher,
      headers: { ...headers, ...(authorization ? { authorization } : {}) },
      ...(body ? { body } : {}),
    })
  let response = await send()
  const challenge = parseChallenge(response.headers['www-authenticate'])
  if (response.statusCode === 401 && challenge?.scheme === 'bearer' && challenge.params.realm) {
    await response.body.dump()
    const { params } = challenge
    const realm = new URL(params.realm!)
    if (params.service) realm.searchParams.set('service', params.service)
    realm.searchParams.set('scope', `repository:${path}:pull,push`)
    const token = await request(realm, { dispatcher, headers: basic ? { authorization: basic } : {} })
    const answer = (await token.body.json()) as { token?: string; access_token?: string }
    authorization = `Bearer ${answer.token ?? answer.access_token}`
    response = await send()
  }
  return response
}

async function expectOk(response: Awaited<ReturnType<typeof call>>, what: string) {
  if (response.statusCode >= 300) {
    throw new Error(
      `${what}: the registry answered ${response.statusCode}: ${(await response.body.text()).slice(0, 200)}`,
    )
  }
  return response
}

async function pushBlob(bytes: Buffer, digest: string) {
  const upload = await expectOk(await call('POST', `/v2/${path}/blobs/uploads/`), 'starting a blob upload')
  await upload.body.dump()
  const location = new URL(String(upload.headers.location), `https://${host}`)
  location.searchParams.set('digest', digest)
  const put = await call('PUT', location.href, { 'content-type': 'application/octet-stream' }, bytes)
  await (await expectOk(put, `uploading ${digest}`)).body.dump()
}

async function putManifest(reference: string, mediaType: string, bytes: Buffer) {
  const put = await call('PUT', `/v2/${path}/manifests/${reference}`, { 'content-type': mediaType }, bytes)
  await expectOk(put, `putting the manifest ${reference}`)
  const subject = put.headers['oci-subject']
  await put.body.dump()
  return subject
}

const indexAnswer = await expectOk(
  await call('GET', `/v2/${path}/manifests/${indexDigest}`, { accept: OCI_INDEX }),
  'reading the index',
)
const index = (await indexAnswer.body.json()) as {
  manifests: Array<{ mediaType: string; digest: string; size: number; platform?: { architecture: string } }>
}
const image = index.manifests.find((entry) => entry.platform?.architecture === arch)
if (!image) throw new Error(`the index ${indexDigest} has no ${arch} image`)
const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size }

const sbom = readFileSync(sbomFile)
const layer = {
  mediaType: SBOM_TYPE,
  digest: digestOf(sbom),
  size: sbom.length,
  annotations: { 'org.opencontainers.image.title': 'sbom.cdx.json' },
}
await pushBlob(Buffer.from('{}'), EMPTY.digest)
await pushBlob(sbom, layer.digest)
const annotations = {
  'org.opencontainers.image.created': new Date(0).toISOString(),
  'org.opencontainers.image.description': `CycloneDX SBOM of linux/${arch}`,
}
const artifact = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SBOM_TYPE,
    config: EMPTY,
    layers: [layer],
    subject,
    annotations,
  }),
)
const artifactDigest = digestOf(artifact)
const acknowledged = await putManifest(artifactDigest, OCI_MANIFEST, artifact)

// Without the referrers API the subject's referrers are an index under the fallback tag: read it, add, write it.
if (!acknowledged) {
  const tag = `sha256-${subject.digest.slice('sha256:'.length)}`
  const existing = await call('GET', `/v2/${path}/manifests/${tag}`, { accept: OCI_INDEX })
  const referrers =
    existing.statusCode === 200
      ? ((await existing.body.json()) as { manifests: unknown[] })
      : (await existing.body.dump(), { manifests: [] })
  const descriptor = {
    mediaType: OCI_MANIFEST,
    digest: artifactDigest,
    size: artifact.length,
    artifactType: SBOM_TYPE,
    annotations,
  }
  const manifests = [
    ...referrers.manifests.filter((entry) => (entry as { digest: string }).digest !== artifactDigest),
    descriptor,
  ]
  await putManifest(tag, OCI_INDEX, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })))
}
console.log(artifactDigest)
await dispatcher.close()
