import { createHash, createPrivateKey, createPublicKey, scryptSync, sign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { DIGEST_RE } from './input.ts'
import { isObject } from './json.ts'
import { MANIFEST_TYPES, pushBlob, pushLimits, putReferrer } from './registry.ts'
import type { PushTarget } from './registry.ts'
import { cut, escapeControls } from './safe-text.ts'
import { NAME, SEVERITIES, UsageError, VERSION } from './vocabulary.ts'
import type { Evaluation, Gate, ImageRef, Mode } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// The verdict as a signed attestation (--attest): an in-toto Statement v1 (in-toto/attestation spec/v1/statement.md)
// with the SLSA Verification Summary predicate (slsa-framework/slsa docs/spec/v1.0/verification_summary.md), in a
// DSSE envelope (secure-systems-lab/dsse envelope.md, protocol.md) signed with ECDSA P-256 over SHA-256, as cosign
// signs one. Loaded with import() only by the runs that attest.

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1'
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json'
/** The verifier, as admission policies expect it: one identity whatever the version (the version is beside it). */
export const VERIFIER_ID = 'https://amr-policy-gate.github.io/verifier'
/** What the policy digest is a digest of: this document's canonical JSON (docs/admission.md). */
export const POLICY_URI = 'https://amr-policy-gate.github.io/policy/v1'
/** The extension field with the counts (the VSA spec: extension fields are named by URIs). */
export const COUNTS_FIELD = 'https://amr-policy-gate.github.io/vsa/counts/v1'

/** cosign's encrypted private key (`cosign generate-key-pair`): PEM of JSON, scrypt then NaCl secretbox. */
const COSIGN_KEY_TYPES = new Set(['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'])
/** scrypt may cost what cosign's own N of 2^15 or 2^16 costs, and no more: a key must not exhaust the step's memory. */
const MAX_SCRYPT_N = 2 ** 17

const keyError = (origin: string, problem: string, fix: string) =>
  new UsageError('ATTEST_KEY', `${origin} ${problem}: ${fix}`)

/**
 * The signing key of a PEM file: a PKCS#8 or SEC1 EC key, a PKCS#8 key encrypted with the password, or cosign's
 * encrypted key (`COSIGN_PASSWORD`, empty when unset, as `cosign generate-key-pair` writes it with an empty one). It
 * must be ECDSA P-256, which cosign and the policy-controller verify. Anything else is a usage error naming the file.
 */
export function signingKeyFrom(pem: string, password: string | undefined, origin: string): KeyObject {
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem)
  if (!block)
    throw keyError(origin, 'holds no PEM key', 'give the private key cosign generate-key-pair wrote, or a PKCS#8 PEM')
  const type = block[1]!
  let key: KeyObject
  if (COSIGN_KEY_TYPES.has(type)) key = cosignKey(block[2]!, password ?? '', origin)
  else if (type === 'PRIVATE KEY' || type === 'EC PRIVATE KEY' || type === 'ENCRYPTED PRIVATE KEY') {
    try {
      key = createPrivateKey({ key: block[0], format: 'pem', ...(password ? { passphrase: password } : {}) })
    } catch (error) {
      const why = (error as { code?: string }).code ?? 'unreadable'
      throw type === 'ENCRYPTED PRIVATE KEY'
        ? keyError(origin, `cannot be decrypted (${why})`, 'give its password in COSIGN_PASSWORD')
        : keyError(origin, `is not a readable ${type} (${why})`, 'give the private key itself')
    }
  } else throw keyError(origin, `holds a PEM ${escapeControls(cut(type, 40))}`, 'give a private key')
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined
  if (curve !== 'prime256v1')
    throw keyError(
      origin,
      `is a ${key.asymmetricKeyType ?? 'non-asymmetric'}${curve ? ` ${curve}` : ''} key`,
      'the attestation is signed with ECDSA P-256, as cosign signs: give a P-256 key (cosign generate-key-pair)',
    )
  return key
}

/**
 * Decrypts cosign's key, base64 of `{kdf: {name: scrypt, params: {N, r, p}, salt}, cipher: {name: nacl/secretbox,
 * nonce}, ciphertext}`: scrypt derives the secretbox key from the password; the plaintext is the PKCS#8 key.
 */
function cosignKey(body: string, password: string, origin: string): KeyObject {
  let sealed: unknown
  try {
    sealed = JSON.parse(Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8'))
  } catch {
    throw keyError(origin, 'is not a cosign key (its PEM holds no JSON)', 'give the key cosign generate-key-pair wrote')
  }
  const kdf = isObject(sealed) && isObject(sealed.kdf) ? sealed.kdf : undefined
  const params = kdf && isObject(kdf.params) ? kdf.params : undefined
  const cipher = isObject(sealed) && isObject(sealed.cipher) ? sealed.cipher : undefined
  const [N, r, p] = [params?.N, params?.r, params?.p]
  const valid =
    kdf?.name === 'scrypt' &&
    cipher?.name === 'nacl/secretbox' &&
    typeof N === 'number' &&
    Number.isInteger(Math.log2(N)) &&
    N <= MAX_SCRYPT_N &&
    r === 8 &&
    p === 1 &&
    typeof kdf.salt === 'string' &&
    typeof cipher.nonce === 'string' &&
    isObject(sealed) &&
    typeof sealed.ciphertext === 'string'
  if (!valid)
    throw keyError(
      origin,
      'is not a cosign key the gate can open (scrypt with N up to 2^17, r 8, p 1, and nacl/secretbox)',
      'give the key cosign generate-key-pair wrote',
    )
  const secret = scryptSync(password, Buffer.from(kdf!.salt as string, 'base64'), 32, {
    N: N as number,
    r: 8,
    p: 1,
    maxmem: 256 * (N as number) * 8 + 2 ** 20,
  })
  const nonce = Buffer.from(cipher!.nonce as string, 'base64')
  let der: Uint8Array
  try {
    der = secretboxOpen(secret, nonce, Buffer.from((sealed as { ciphertext: string }).ciphertext, 'base64'))
  } catch {
    throw keyError(
      origin,
      'cannot be decrypted with the password given',
      password ? 'check COSIGN_PASSWORD' : 'give its password in COSIGN_PASSWORD',
    )
  }
  try {
    return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' })
  } catch {
    throw keyError(
      origin,
      'decrypts to something that is not a PKCS#8 key',
      'give the key cosign generate-key-pair wrote',
    )
  }
}

/** NaCl's secretbox (XSalsa20-Poly1305), which Node's crypto lacks: from @noble/ciphers, audited, no dependencies. */
let secretboxOpen: (key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array) => Uint8Array = () => {
  throw new Error('the secretbox cipher was not loaded: call loadCiphers first')
}

export async function loadCiphers(): Promise<void> {
  const { xsalsa20poly1305 } = await import('@noble/ciphers/salsa.js')
  secretboxOpen = (key, nonce, sealed) => xsalsa20poly1305(key, nonce).decrypt(sealed)
}

/** The public key of a signing key, as cosign.pub holds it (SPKI PEM): for the admission policies. */
export const publicKeyPem = (key: KeyObject) => createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString()

/**
 * RFC 8785 JSON canonicalization for the data the gate hashes (objects, arrays, strings, integers, booleans, null):
 * keys sorted by UTF-16 code units, no whitespace, strings and numbers as ECMAScript serializes them.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isObject(value))
    return `{${Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(',')}}`
  return JSON.stringify(value)
}

export const sha256Hex = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex')

/** DSSE's pre-authentication encoding: what is signed, so that the payload type is signed with the payload. */
export function preAuthenticationEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload])
}

export interface Envelope {
  readonly payloadType: string
  /** Base64 of the statement's bytes. */
  readonly payload: string
  readonly signatures: ReadonlyArray<{ readonly keyid: string; readonly sig: string }>
}

/** The statement in a DSSE envelope, signed over the PAE with ECDSA P-256 and SHA-256 (an ASN.1 DER signature). */
export function signEnvelope(statement: unknown, key: KeyObject): Envelope {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8')
  const sig = sign('sha256', preAuthenticationEncoding(IN_TOTO_PAYLOAD_TYPE, payload), key).toString('base64')
  // cosign writes an empty keyid; verifiers find the key by the policy's authority, not by id.
  return { payloadType: IN_TOTO_PAYLOAD_TYPE, payload: payload.toString('base64'), signatures: [{ keyid: '', sig }] }
}

/** A document the verdict rests on: where it came from and the digest of its bytes. */
export interface InputDocument {
  readonly uri: string
  readonly sha256: string
}

export interface VerdictFacts {
  /** The image judged: `registry/repository@sha256:...`. */
  readonly image: ImageRef
  readonly repository: string
  readonly evaluation: Evaluation
  readonly gate: Gate
  readonly mode: Mode
  /** The canonical JSON of what decided (docs/admission.md), hashed into the predicate. */
  readonly policy: unknown
  readonly inputs: readonly InputDocument[]
  readonly now: number
}

/**
 * The verdict as an in-toto Statement with the SLSA VSA predicate: the image by digest; PASSED or FAILED; the level
 * named by the gate (AMR_POLICY_GATE_HIGH), or FAILED as the spec says; the policy's digest; the scan's documents; the
 * counts in an extension field named by a URI, as the spec allows.
 */
export function verdictStatement(facts: VerdictFacts) {
  const { evaluation } = facts
  const passed = evaluation.passed
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: facts.repository, digest: { sha256: facts.image.digest.slice('sha256:'.length) } }],
    predicateType: VSA_PREDICATE_TYPE,
    predicate: {
      verifier: { id: VERIFIER_ID, version: { [NAME]: VERSION } },
      timeVerified: new Date(facts.now).toISOString(),
      resourceUri: `${facts.repository}@${facts.image.digest}`,
      policy: { uri: POLICY_URI, digest: { sha256: sha256Hex(canonicalJson(facts.policy)) } },
      inputAttestations: facts.inputs.map((input) => ({ uri: input.uri, digest: { sha256: input.sha256 } })),
      verificationResult: passed ? 'PASSED' : 'FAILED',
      verifiedLevels: passed ? [`AMR_POLICY_GATE_${facts.gate.toUpperCase()}`] : ['FAILED'],
      slsaVersion: '1.0',
      [COUNTS_FIELD]: {
        gate: facts.gate,
        mode: facts.mode,
        ...Object.fromEntries(SEVERITIES.map((severity) => [severity, evaluation.counts[severity]])),
        blocking: evaluation.blocking.length,
        suppressed: evaluation.suppressed.length,
        warnings: evaluation.warnings.length,
        knownExploited: evaluation.knownExploited,
      },
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Pushing it where cosign and the policy-controller look (sigstore/cosign specs/ATTESTATION_SPEC.md and
// SIGNATURE_SPEC.md, "Tag-based Discovery"): an OCI image manifest tagged `sha256-<hex>.att` in the image's
// repository, one layer per attestation (a DSSE envelope, application/vnd.dsse.envelope.v1+json, annotated with its
// predicateType), appended to the layers already there.

const { ociManifest: OCI_MANIFEST, ociIndex: OCI_INDEX, dockerManifest: DOCKER_MANIFEST } = MANIFEST_TYPES
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
const MAX_ATTESTATION_LAYERS = 256

/** `sha256:<hex>` → `sha256-<hex>.att`, cosign's tag for the attestations of that digest. */
export const attestationTag = (digest: string) => `${digest.replace(':', '-')}.att`

export interface Layer {
  readonly mediaType: string
  readonly size: number
  readonly digest: string
  readonly annotations?: Readonly<Record<string, string>>
}

/** The layers of a cosign manifest already at the tag, kept as they are; anything else is not overwritten. */
export function attestationLayers(body: Buffer, tag: string): Layer[] {
  let manifest: unknown
  try {
    manifest = JSON.parse(body.toString('utf8'))
  } catch {
    manifest = undefined
  }
  const layers = isObject(manifest) && Array.isArray(manifest.layers) ? manifest.layers : undefined
  const valid =
    isObject(manifest) &&
    (manifest.mediaType === undefined ||
      manifest.mediaType === OCI_MANIFEST ||
      manifest.mediaType === DOCKER_MANIFEST) &&
    layers?.every(
      (layer) =>
        isObject(layer) &&
        typeof layer.mediaType === 'string' &&
        typeof layer.size === 'number' &&
        typeof layer.digest === 'string' &&
        DIGEST_RE.test(layer.digest),
    )
  if (!valid || !layers)
    throw new Error(`the tag ${tag} holds something that is not a cosign manifest: the gate does not overwrite it`)
  if (layers.length >= MAX_ATTESTATION_LAYERS)
    throw new Error(`the tag ${tag} holds ${layers.length} layers already: prune them (cosign clean)`)
  return layers as Layer[]
}

/** The manifest and config of the attestations, the new layer appended; cosign's config names every layer. */
export function attestationManifest(existing: readonly Layer[], envelope: Layer): { manifest: Buffer; config: Buffer } {
  const layers = [...existing, envelope]
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
    }),
  )
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: `sha256:${sha256Hex(config)}` },
      layers,
    }),
  )
  return { manifest, config }
}

/** One layer to append to a tag: its bytes, media type and annotations. */
export interface TagLayer {
  readonly bytes: Buffer
  readonly mediaType: string
  readonly annotations: Readonly<Record<string, string>>
  /** What the messages call it. */
  readonly what: string
}

/**
 * Appends a layer to a cosign tag (`sha256-<hex>.att` for attestations, `.sig` for signatures): the layer and config
 * blobs, then the manifest, which names every layer there was and the new one. Returns the tag and the manifest's
 * digest.
 */
export async function appendToTag(
  target: PushTarget,
  tag: string,
  layer: TagLayer,
): Promise<{ readonly reference: string; readonly digest: string }> {
  const path = `/v2/${target.repository}/manifests/${tag}`
  const existing = await target.send({
    method: 'GET',
    target: path,
    headers: { accept: `${OCI_MANIFEST}, ${DOCKER_MANIFEST}` },
    ok: [200, 404],
    what: `what ${tag} holds`,
    limits: pushLimits(tag),
  })
  const layers = existing.status === 200 ? attestationLayers(existing.body, tag) : []
  const descriptor: Layer = {
    mediaType: layer.mediaType,
    size: layer.bytes.length,
    digest: `sha256:${sha256Hex(layer.bytes)}`,
    annotations: layer.annotations,
  }
  const { manifest, config } = attestationManifest(layers, descriptor)
  await pushBlob(target, layer.bytes, descriptor.digest, layer.what)
  await pushBlob(target, config, `sha256:${sha256Hex(config)}`, `the config of ${tag}`)
  await target.send({
    method: 'PUT',
    target: path,
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
    ok: [201],
    what: `the manifest of ${tag}`,
    limits: pushLimits(tag),
  })
  return { reference: `${target.registry}/${target.repository}:${tag}`, digest: `sha256:${sha256Hex(manifest)}` }
}

/** The envelope appended to the image's attestations, as cosign attests (ATTESTATION_SPEC.md). */
export const pushAttestation = (target: PushTarget, imageDigest: string, envelope: Buffer) =>
  appendToTag(target, attestationTag(imageDigest), {
    bytes: envelope,
    mediaType: DSSE_MEDIA_TYPE,
    annotations: { predicateType: VSA_PREDICATE_TYPE },
    what: 'the attestation',
  })

/**
 * The envelope also as an OCI 1.1 referrer of the image (opencontainers/distribution-spec spec.md, "Listing
 * Referrers"), where the registry lists referrers: an artifact manifest (artifactType the DSSE media type, the empty
 * config, the envelope as its layer) whose `subject` is the image (putReferrer). A registry without the referrers
 * API (404, as distribution 2.8 answers) is left to the tag, which cosign and the policy-controller read: undefined.
 */
export async function pushReferrer(
  target: PushTarget,
  imageDigest: string,
  envelope: Buffer,
): Promise<string | undefined> {
  const what = `the referrers of ${imageDigest}`
  const listing = await target.send({
    method: 'GET',
    target: `/v2/${target.repository}/referrers/${imageDigest}`,
    headers: { accept: OCI_INDEX },
    ok: [200, 404],
    what,
    limits: pushLimits(what),
  })
  if (listing.status !== 200 || !String(listing.headers['content-type'] ?? '').startsWith(OCI_INDEX)) return undefined
  const image = await target.send({
    method: 'HEAD',
    target: `/v2/${target.repository}/manifests/${imageDigest}`,
    headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}, ${DOCKER_MANIFEST}` },
    ok: [200],
    what: `the manifest of ${imageDigest}`,
    limits: pushLimits(what),
  })
  const mediaType = String(image.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
  const size = Number(image.headers['content-length'])
  if (!mediaType || !Number.isInteger(size) || size <= 0)
    throw new Error(`${target.registry} named no media type and size of ${imageDigest}, so no referrer can name it`)
  const referrer = await putReferrer(target, {
    artifactType: DSSE_MEDIA_TYPE,
    blob: envelope,
    layer: { mediaType: DSSE_MEDIA_TYPE, annotations: { predicateType: VSA_PREDICATE_TYPE } },
    subject: { mediaType, digest: imageDigest, size },
    what: 'the attestation',
  })
  return referrer.digest
}
