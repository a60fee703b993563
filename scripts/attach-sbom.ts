// Attaches an SBOM to one architecture's image of a pushed index as an OCI 1.1 referrer: an artifact manifest
// (artifactType application/vnd.cyclonedx+json, the empty config, the SBOM as its one layer) whose `subject` is
// that image, pushed through the gate's own registry client (scripts/release-registry.ts); where the registry has no
// referrers API (distribution 2.8), also under the fallback tag sha256-<subject hex> as an index of its referrers
// (OCI distribution spec 1.1).
//   node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE   prints the artifact's digest
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { EMPTY_CONFIG, OCI_MANIFEST } from '../gate/attest.ts'
import { isObject, parseJson } from '../gate/json.ts'
import { pushBlob, pushLimits } from '../gate/registry.ts'
import { openReleaseRegistry } from './release-registry.ts'

const [repository, indexDigest, arch, sbomFile] = process.argv.slice(2)
if (!repository || !indexDigest || !arch || !sbomFile) {
  console.error('usage: node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE')
  process.exit(2)
}
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const SBOM_TYPE = 'application/vnd.cyclonedx+json'
const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

try {
  const target = await openReleaseRegistry(`${repository}@${indexDigest}`, 'attach-sbom.ts')
  const manifests = `/v2/${target.repository}/manifests`
  const index = parseJson(
    (await target.get(`${manifests}/${indexDigest}`, OCI_INDEX, 'the index', pushLimits('the index'))).body.toString(),
  ) as { manifests?: Array<{ mediaType: string; digest: string; size: number; platform?: { architecture: string } }> }
  const image = index.manifests?.find((entry) => entry.platform?.architecture === arch)
  if (!image) throw new Error(`the index ${indexDigest} has no ${arch} image`)
  const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size }

  const sbom = readFileSync(sbomFile)
  const layer = {
    mediaType: SBOM_TYPE,
    digest: digestOf(sbom),
    size: sbom.length,
    annotations: { 'org.opencontainers.image.title': 'sbom.cdx.json' },
  }
  await pushBlob(target, Buffer.from('{}'), EMPTY_CONFIG.digest, 'the empty config')
  await pushBlob(target, sbom, layer.digest, 'the SBOM')
  const annotations = {
    'org.opencontainers.image.created': new Date(0).toISOString(),
    'org.opencontainers.image.description': `CycloneDX SBOM of linux/${arch}`,
  }
  const artifact = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SBOM_TYPE,
      config: { ...EMPTY_CONFIG, data: 'e30=' },
      layers: [layer],
      subject,
      annotations,
    }),
  )
  const artifactDigest = digestOf(artifact)
  const put = (reference: string, mediaType: string, bytes: Buffer) =>
    target.send({
      method: 'PUT',
      target: `${manifests}/${reference}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: [201],
      what: `the manifest ${reference}`,
      limits: pushLimits(reference),
    })
  const acknowledged = (await put(artifactDigest, OCI_MANIFEST, artifact)).headers['oci-subject']

  // Without the referrers API the subject's referrers are an index under the fallback tag: read it, add, write it.
  if (!acknowledged) {
    const tag = `sha256-${subject.digest.slice('sha256:'.length)}`
    const existing = await target.send({
      method: 'GET',
      target: `${manifests}/${tag}`,
      headers: { accept: OCI_INDEX },
      ok: [200, 404],
      what: `the referrers of ${subject.digest}`,
      limits: pushLimits(tag),
    })
    const listed = existing.status === 200 ? parseJson(existing.body.toString()) : undefined
    const referrers = isObject(listed) && Array.isArray(listed.manifests) ? listed.manifests : []
    const descriptor = {
      mediaType: OCI_MANIFEST,
      digest: artifactDigest,
      size: artifact.length,
      artifactType: SBOM_TYPE,
      annotations,
    }
    const entries = [...referrers.filter((entry) => !isObject(entry) || entry.digest !== artifactDigest), descriptor]
    await put(
      tag,
      OCI_INDEX,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })),
    )
  }
  console.log(artifactDigest)
  await target.close()
} catch (error) {
  console.error(`attach-sbom.ts: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
