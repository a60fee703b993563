// Signs a pushed release as cosign signs an image (sigstore/cosign specs/SIGNATURE_SPEC.md): the index and each image
// it lists get the simple-signing payload (critical.identity.docker-reference, critical.image.docker-manifest-digest,
// critical.type "cosign container image signature"), signed with ECDSA P-256 over SHA-256 (an ASN.1 DER signature,
// base64 in the layer annotation dev.cosignproject.cosign/signature), appended to the tag sha256-<hex>.sig of the same
// repository. The key as --attest reads it (cosign.key with COSIGN_PASSWORD, or a PKCS#8 PEM); the push goes through
// the gate's own registry client (scripts/release-registry.ts).
//   node scripts/sign-image.ts REGISTRY/REPOSITORY INDEX-DIGEST KEY-FILE   prints each digest it signed
//   node scripts/sign-image.ts --check KEY-FILE                            only reads and decrypts the key
import { sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { appendToTag, loadCiphers, signingKeyFrom } from '../gate/attest.ts'
import { isObject, parseJson } from '../gate/json.ts'
import { ACCEPT_MANIFESTS } from '../gate/registry.ts'
import { openReleaseRegistry } from './release-registry.ts'

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'

/** cosign's simple-signing payload for one digest of the repository. */
function simpleSigningPayload(repository: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  )
}

const args = process.argv.slice(2)
if (args[0] === '--check' && args[1]) {
  try {
    await loadCiphers()
    signingKeyFrom(readFileSync(args[1], 'utf8'), process.env.COSIGN_PASSWORD, args[1])
    process.exit(0)
  } catch (error) {
    console.error(`sign-image.ts: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(2)
  }
}
const [repository, indexDigest, keyFile] = args
if (!repository || !indexDigest || !keyFile) {
  console.error('usage: node scripts/sign-image.ts REGISTRY/REPOSITORY INDEX-DIGEST KEY-FILE')
  process.exit(2)
}
try {
  await loadCiphers()
  const key = signingKeyFrom(readFileSync(keyFile, 'utf8'), process.env.COSIGN_PASSWORD, keyFile)
  const target = await openReleaseRegistry(`${repository}@${indexDigest}`, 'sign-image.ts')
  const limits = { maxBytes: 4 * 1024 * 1024, tooLarge: () => new Error('the index is larger than 4 MiB') }
  const index = parseJson(
    (
      await target.get(`/v2/${target.repository}/manifests/${indexDigest}`, ACCEPT_MANIFESTS, 'the index', limits)
    ).body.toString(),
  )
  const images = isObject(index) && Array.isArray(index.manifests) ? index.manifests : []
  const digests = [indexDigest, ...images.map((image) => (isObject(image) ? String(image.digest) : ''))]
  for (const digest of digests) {
    const payload = simpleSigningPayload(`${target.registry}/${target.repository}`, digest)
    const signature = sign('sha256', payload, key).toString('base64')
    await appendToTag(target, `${digest.replace(':', '-')}.sig`, {
      bytes: payload,
      mediaType: SIMPLE_SIGNING,
      annotations: { [SIGNATURE_ANNOTATION]: signature },
      what: `the signature of ${digest}`,
    })
    console.log(digest)
  }
  await target.close()
} catch (error) {
  console.error(`sign-image.ts: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
