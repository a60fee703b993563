// Attaches an SBOM to one architecture's image of a pushed index as an OCI 1.1 referrer: an artifact manifest
// (artifactType application/vnd.cyclonedx+json, the empty config, the SBOM as its one layer) whose `subject` is
// that image, pushed through the gate's own registry client (scripts/release-registry.ts); where the registry has no
// referrers API (distribution 2.8), also under the fallback tag sha256-<subject hex> as an index of its referrers
// (OCI distribution spec 1.1). The referrer itself is the gate's putReferrer, as --attest pushes one.
//   node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE   prints the artifact's digest
import { readFileSync } from 'node:fs'
import { isObject, parseJson } from '../gate/json.ts'
import { MANIFEST_TYPES, pushLimits, putReferrer } from '../gate/registry.ts'
import { openReleaseRegistry } from './release-registry.ts'

const [repository, indexDigest, arch, sbomFile] = process.argv.slice(2)
if (!repository || !indexDigest || !arch || !sbomFile) {
  console.error('usage: node scripts/attach-sbom.ts REGISTRY/REPOSITORY INDEX-DIGEST ARCH SBOM-FILE')
  process.exit(2)
}
const OCI_INDEX = MANIFEST_TYPES.ociIndex
const SBOM_TYPE = 'application/vnd.cyclonedx+json'

try {
  const target = await openReleaseRegistry(`${repository}@${indexDigest}`, 'attach-sbom.ts')
  const manifests = `/v2/${target.repository}/manifests`
  const index = parseJson(
    (await target.get(`${manifests}/${indexDigest}`, OCI_INDEX, 'the index', pushLimits('the index'))).body.toString(),
  ) as { manifests?: Array<{ mediaType: string; digest: string; size: number; platform?: { architecture: string } }> }
  const image = index.manifests?.find((entry) => entry.platform?.architecture === arch)
  if (!image) throw new Error(`the index ${indexDigest} has no ${arch} image`)
  const subject = { mediaType: image.mediaType, digest: image.digest, size: image.size }

  const annotations = {
    'org.opencontainers.image.created': new Date(0).toISOString(),
    'org.opencontainers.image.description': `CycloneDX SBOM of linux/${arch}`,
  }
  const artifact = await putReferrer(target, {
    artifactType: SBOM_TYPE,
    blob: readFileSync(sbomFile),
    layer: { mediaType: SBOM_TYPE, annotations: { 'org.opencontainers.image.title': 'sbom.cdx.json' } },
    subject,
    annotations,
    what: 'the SBOM',
  })

  // Without the referrers API the subject's referrers are an index under the fallback tag: read it, add, write it.
  if (!artifact.acknowledged) {
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
      mediaType: MANIFEST_TYPES.ociManifest,
      digest: artifact.digest,
      size: artifact.size,
      artifactType: SBOM_TYPE,
      annotations,
    }
    const entries = [...referrers.filter((entry) => !isObject(entry) || entry.digest !== artifact.digest), descriptor]
    await target.send({
      method: 'PUT',
      target: `${manifests}/${tag}`,
      headers: { 'content-type': OCI_INDEX },
      body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })),
      ok: [201],
      what: `the referrers index ${tag}`,
      limits: pushLimits(tag),
    })
  }
  console.log(artifact.digest)
  await target.close()
} catch (error) {
  console.error(`attach-sbom.ts: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
