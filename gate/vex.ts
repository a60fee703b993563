import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { parseInstant } from './input.ts'
import type { FileSystem } from './io.ts'
import { isObject, parseJsonConfig, textOf } from './json.ts'
import { cut, escapeControls, toJson } from './safe-text.ts'
import { NAME, SUPPRESSING_VEX_STATUSES, UsageError, VERSION, importCommonJs } from './vocabulary.ts'
import type { Evaluation, Finding, ImageRef, SuppressedFinding, VexVerdict } from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// VEX beside the scan (--vex) and out of it (--print-vex): OpenVEX v0.2.0 (openvex/spec OPENVEX-SPEC.md) and
// CycloneDX VEX (vulnerabilities[].analysis with affects). Loaded with import() only by runs that name one.

/** purl parsing and each type's normalisation (pypi names, lower-case types) from the purl spec's own JS library. */
type PackageURL = import('packageurl-js').PackageURL
let purlLibrary: Promise<typeof import('packageurl-js')> | undefined
export const loadPurlLibrary = () => (purlLibrary ??= importCommonJs(import('packageurl-js')))

export const OPENVEX_CONTEXT = 'https://openvex.dev/ns/v0.2.0'
export const VEX_STATUSES = ['not_affected', 'affected', 'fixed', 'under_investigation'] as const
export type VexStatus = (typeof VEX_STATUSES)[number]
export const OPENVEX_JUSTIFICATIONS: ReadonlySet<string> = new Set([
  'component_not_present',
  'vulnerable_code_not_present',
  'vulnerable_code_not_in_execute_path',
  'vulnerable_code_cannot_be_controlled_by_adversary',
  'inline_mitigations_already_exist',
])
/** CycloneDX's analysis states (1.4 to 1.7) as the OpenVEX status they state. */
export const CYCLONEDX_STATES: ReadonlyMap<string, VexStatus> = new Map([
  ['not_affected', 'not_affected'],
  ['false_positive', 'not_affected'],
  ['resolved', 'fixed'],
  ['resolved_with_pedigree', 'fixed'],
  ['exploitable', 'affected'],
  ['in_triage', 'under_investigation'],
])
/** CycloneDX's justifications, and the OpenVEX label each one says, where one does. */
export const CYCLONEDX_JUSTIFICATIONS: ReadonlyMap<string, string | undefined> = new Map([
  ['code_not_present', 'vulnerable_code_not_present'],
  ['code_not_reachable', 'vulnerable_code_not_in_execute_path'],
  ['requires_configuration', undefined],
  ['requires_dependency', undefined],
  ['requires_environment', undefined],
  ['protected_by_compiler', 'inline_mitigations_already_exist'],
  ['protected_at_runtime', 'inline_mitigations_already_exist'],
  ['protected_at_perimeter', 'inline_mitigations_already_exist'],
  ['protected_by_mitigating_control', 'inline_mitigations_already_exist'],
])
/** The most statements the gate reads from all --vex documents together. */
export const MAX_VEX_STATEMENTS = 100_000

/** What identifies a product or a subcomponent: purls, other identifiers (an image reference, an IRI), digests. */
export interface VexComponent {
  readonly purls: readonly PackageURL[]
  readonly ids: readonly string[]
  /** `sha256:<hex>` from the `sha-256` hash. */
  readonly digests: readonly string[]
  /** A CycloneDX component without a purl: its name and version. */
  readonly named?: { readonly name: string; readonly version: string }
}

export interface VexProduct extends VexComponent {
  readonly subcomponents: readonly VexComponent[]
}

export interface VexStatement {
  /** `FILE, statement N` (OpenVEX) or `FILE, vulnerabilities[N]` (CycloneDX): where a person finds it. */
  readonly where: string
  readonly file: string
  readonly vulnerability: string
  /** The name and its aliases, lower case. */
  readonly ids: readonly string[]
  readonly products: readonly VexProduct[]
  readonly status: VexStatus
  readonly justification?: string
  readonly impact?: string
  readonly action?: string
  /** ms since the epoch; a CycloneDX statement with no time of its own or its document's is the oldest. */
  readonly timestamp: number
  readonly author?: string
}

/** The image under test, as VEX products name it: its digests, its repository (`host/path`), and the purl name. */
export interface ImageIdentity {
  readonly digests: ReadonlySet<string>
  readonly repository?: string
  readonly name?: string
  readonly tag?: string
}

const invalid = (where: string, problem: string, fix: string) =>
  new UsageError('VEX', `--vex ${escapeControls(cut(where, 200))}: ${problem}: ${fix}`)

/** A name from outside (a vulnerability ID) in a message: cut and escaped. */
const plain = (text: string) => escapeControls(cut(text, 80))

/** An outside value quoted in a message: a string in quotes, anything else as JSON; cut, and escaped. */
const shown = (value: unknown) =>
  typeof value === 'string'
    ? `"${escapeControls(cut(value, 80))}"`
    : escapeControls(cut(String(JSON.stringify(value)), 80))

/** A text field of a statement: absent, or a string (cut to what a report shows). */
function optionalText(owner: Record<string, unknown>, field: string, where: string): string | undefined {
  const value = owner[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw invalid(where, `${field} is ${shown(value)}, not text`, 'write it as a string')
  return value.trim() ? cut(value.trim(), 1_000) : undefined
}

/** A label from a fixed list (a justification), when given. */
function checkLabel(
  value: string | undefined,
  labels: ReadonlySet<string>,
  where: string,
  field: string,
  what: string,
) {
  if (value && !labels.has(value))
    throw invalid(where, `${field} ${shown(value)} is not ${what}`, `use one of ${[...labels].join(', ')}`)
}

/** CISA's minimum requirements: a not_affected statement says why. */
const notAffectedWithoutWhy = (where: string, name: string, fields: string) =>
  invalid(where, `says not_affected about ${plain(name)} without ${fields}`, 'say why, as OpenVEX and CISA require')

function instantOf(value: unknown, where: string, field: string): number | undefined {
  if (value === undefined || value === null) return undefined
  const instant = typeof value === 'string' ? parseInstant(value.trim()) : undefined
  if (instant === undefined)
    throw invalid(where, `${field} ${shown(value)} is not an RFC 3339 time`, 'write it as 2024-05-01T12:00:00Z')
  return instant
}

/**
 * The statements of one --vex document, checked: OpenVEX (any `https://openvex.dev/ns` context) or a CycloneDX BOM
 * whose vulnerabilities carry an analysis. Anything else, or a statement the gate could not apply as written, is a
 * usage error naming the file and the statement.
 */
export async function vexStatementsFrom(document: unknown, file: string): Promise<VexStatement[]> {
  const { PackageURL } = await loadPurlLibrary()
  const parsePurl = (text: string, where: string): PackageURL => {
    try {
      return PackageURL.fromString(text)
    } catch (error) {
      throw invalid(where, `${shown(text)} is not a purl (${shown((error as Error).message)})`, 'fix the purl')
    }
  }
  if (isObject(document) && typeof document['@context'] === 'string') {
    const context = document['@context']
    if (!/^https:\/\/openvex\.dev\/ns(\/v0\.2\.0)?\/?$/.test(context))
      throw invalid(file, `@context ${shown(context)} is not OpenVEX v0.2.0`, `write ${OPENVEX_CONTEXT}`)
    return openVexStatements(document, file, parsePurl)
  }
  if (isObject(document) && document.bomFormat === 'CycloneDX' && Array.isArray(document.vulnerabilities))
    return cycloneDxStatements(document, file, parsePurl)
  throw invalid(
    file,
    'is neither OpenVEX (an @context of https://openvex.dev/ns/...) nor CycloneDX VEX (bomFormat CycloneDX with ' +
      'vulnerabilities)',
    'give an OpenVEX v0.2.0 or CycloneDX VEX document',
  )
}

type PurlParser = (text: string, where: string) => PackageURL

/** An OpenVEX component: its @id (a purl, or any other IRI such as an image reference), identifiers and hashes. */
function openVexComponent(value: unknown, where: string, parsePurl: PurlParser): VexComponent {
  if (!isObject(value)) throw invalid(where, `is ${shown(value)}, not an object`, 'write {"@id": "pkg:..."}')
  const purls: PackageURL[] = []
  const ids: string[] = []
  const add = (text: string) => (text.startsWith('pkg:') ? purls.push(parsePurl(text, where)) : ids.push(text))
  const id = optionalText(value, '@id', where)
  if (id) add(id)
  if (isObject(value.identifiers))
    for (const [kind, text] of Object.entries(value.identifiers))
      if (typeof text === 'string' && text.trim()) kind === 'purl' ? purls.push(parsePurl(text, where)) : add(text)
  const digests: string[] = []
  const sha256 = isObject(value.hashes) ? value.hashes['sha-256'] : undefined
  if (typeof sha256 === 'string' && /^[0-9a-f]{64}$/i.test(sha256)) digests.push(`sha256:${sha256.toLowerCase()}`)
  if (!purls.length && !ids.length && !digests.length)
    throw invalid(where, 'names no product: no @id, identifiers or sha-256 hash', 'identify it, with a purl at best')
  return { purls, ids, digests }
}

function openVexStatements(document: Record<string, unknown>, file: string, parsePurl: PurlParser): VexStatement[] {
  const statements = document.statements
  if (!Array.isArray(statements) || statements.length === 0)
    throw invalid(file, 'has no statements', 'an OpenVEX document lists its statements in "statements"')
  if (statements.length > MAX_VEX_STATEMENTS)
    throw invalid(file, `has ${statements.length} statements`, `the gate reads at most ${MAX_VEX_STATEMENTS}`)
  const documentTime = instantOf(document.timestamp, file, 'timestamp')
  const author = optionalText(document, 'author', file)
  return statements.map((statement, index) => {
    const where = `${file}, statement ${index + 1}`
    if (!isObject(statement)) throw invalid(where, `is ${shown(statement)}, not an object`, 'fix the document')
    const vulnerability = statement.vulnerability
    const name = isObject(vulnerability) ? textOf(vulnerability.name).trim() : ''
    if (!name) throw invalid(where, 'has no vulnerability name', 'write "vulnerability": {"name": "CVE-..."}')
    const aliases = isObject(vulnerability) && Array.isArray(vulnerability.aliases) ? vulnerability.aliases : []
    const status = statement.status
    if (!VEX_STATUSES.includes(status as VexStatus))
      throw invalid(where, `status ${shown(status)} is not an OpenVEX status`, `use one of ${VEX_STATUSES.join(', ')}`)
    const justification = optionalText(statement, 'justification', where)
    checkLabel(justification, OPENVEX_JUSTIFICATIONS, where, 'justification', 'an OpenVEX label')
    const impact = optionalText(statement, 'impact_statement', where)
    if (status === 'not_affected' && !justification && !impact)
      throw notAffectedWithoutWhy(where, name, 'a justification or impact_statement')
    const products = Array.isArray(statement.products) ? statement.products : []
    if (products.length === 0) throw invalid(where, `names no product for ${plain(name)}`, 'list its "products"')
    const timestamp = instantOf(statement.timestamp, where, 'timestamp') ?? documentTime
    if (timestamp === undefined)
      throw invalid(where, 'has no timestamp, and neither has its document', 'give the document a "timestamp"')
    instantOf(statement.last_updated, where, 'last_updated')
    instantOf(statement.action_statement_timestamp, where, 'action_statement_timestamp')
    const action = optionalText(statement, 'action_statement', where)
    return {
      where,
      file,
      vulnerability: name,
      ids: [name, ...aliases.filter((alias): alias is string => typeof alias === 'string')].map((id) =>
        id.trim().toLowerCase(),
      ),
      products: products.map((product, p) => {
        const at = `${where}, products[${p}]`
        const subcomponents = isObject(product) && Array.isArray(product.subcomponents) ? product.subcomponents : []
        return {
          ...openVexComponent(product, at, parsePurl),
          subcomponents: subcomponents.map((sub, s) => openVexComponent(sub, `${at}.subcomponents[${s}]`, parsePurl)),
        }
      }),
      status: status as VexStatus,
      ...(justification ? { justification } : {}),
      ...(impact ? { impact } : {}),
      ...(action ? { action } : {}),
      timestamp,
      ...(author ? { author } : {}),
    }
  })
}

/** The components of a CycloneDX document by bom-ref, nested ones and metadata.component included. */
function componentsByRef(bom: Record<string, unknown>): Map<string, Record<string, unknown>> {
  const byRef = new Map<string, Record<string, unknown>>()
  const pending: unknown[] = [isObject(bom.metadata) ? bom.metadata.component : undefined, ...listOf(bom.components)]
  for (let component = pending.pop(); pending.length || component !== undefined; component = pending.pop()) {
    if (!isObject(component)) continue
    if (typeof component['bom-ref'] === 'string') byRef.set(component['bom-ref'], component)
    pending.push(...listOf(component.components))
  }
  return byRef
}

const listOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : [])

function cycloneDxComponent(component: Record<string, unknown>, where: string, parsePurl: PurlParser): VexComponent {
  const purl = textOf(component.purl).trim()
  if (purl) return { purls: [parsePurl(purl, where)], ids: [], digests: [] }
  const name = textOf(component.name).trim()
  if (!name) throw invalid(where, 'names a component with neither purl nor name', 'give the component its purl')
  return { purls: [], ids: [], digests: [], named: { name, version: textOf(component.version).trim() } }
}

function cycloneDxStatements(bom: Record<string, unknown>, file: string, parsePurl: PurlParser): VexStatement[] {
  const vulnerabilities = bom.vulnerabilities as unknown[]
  if (vulnerabilities.length > MAX_VEX_STATEMENTS)
    throw invalid(file, `has ${vulnerabilities.length} vulnerabilities`, `the gate reads at most ${MAX_VEX_STATEMENTS}`)
  const components = componentsByRef(bom)
  const documentTime = instantOf(
    isObject(bom.metadata) ? bom.metadata.timestamp : undefined,
    file,
    'metadata.timestamp',
  )
  const subject = isObject(bom.metadata) && isObject(bom.metadata.component) ? bom.metadata.component : undefined
  return vulnerabilities.map((vulnerability, index) => {
    const where = `${file}, vulnerabilities[${index}]`
    if (!isObject(vulnerability)) throw invalid(where, `is ${shown(vulnerability)}, not an object`, 'fix the document')
    const name = textOf(vulnerability.id).trim()
    if (!name) throw invalid(where, 'has no id', 'write the vulnerability\'s "id" (CVE-..., GHSA-...)')
    const analysis = vulnerability.analysis
    const state = isObject(analysis) ? textOf(analysis.state).trim() : ''
    if (!state)
      throw invalid(
        where,
        `states no analysis.state for ${plain(name)}, so it is a finding, not a VEX statement`,
        'give the scan with --input, and its VEX with --vex',
      )
    const status = CYCLONEDX_STATES.get(state)
    if (!status)
      throw invalid(
        where,
        `analysis.state ${shown(state)} is not a CycloneDX state`,
        `use one of ${[...CYCLONEDX_STATES.keys()].join(', ')}`,
      )
    const details = analysis as Record<string, unknown>
    const justification = optionalText(details, 'justification', where)
    checkLabel(
      justification,
      new Set(CYCLONEDX_JUSTIFICATIONS.keys()),
      where,
      'analysis.justification',
      'a CycloneDX justification',
    )
    const detail = optionalText(details, 'detail', where)
    if (state === 'not_affected' && !justification && !detail)
      throw notAffectedWithoutWhy(where, name, 'a justification or detail')
    const affects = listOf(vulnerability.affects)
    const products: VexProduct[] = affects.map((affect, a) => {
      const at = `${where}.affects[${a}]`
      const ref = isObject(affect) ? textOf(affect.ref).trim() : ''
      if (!ref) throw invalid(at, 'has no ref', 'name the component (its bom-ref or purl)')
      // A BOM-Link (urn:cdx:serial/version#bom-ref) names a component of another BOM by its bom-ref.
      const bomRef = /^urn:cdx:[^#]*#(.+)$/.exec(ref)?.[1]
      const local = bomRef === undefined ? ref : decodeURIComponent(bomRef)
      const component = components.get(local)
      if (component) return { ...cycloneDxComponent(component, at, parsePurl), subcomponents: [] }
      if (local.startsWith('pkg:')) return { purls: [parsePurl(local, at)], ids: [], digests: [], subcomponents: [] }
      throw invalid(at, `ref ${shown(ref)} names no component of this document`, "write the component's purl as ref")
    })
    if (products.length === 0) {
      if (!subject) throw invalid(where, `names no product for ${plain(name)}`, 'list the components in "affects"')
      products.push({ ...cycloneDxComponent(subject, `${where} (metadata.component)`, parsePurl), subcomponents: [] })
    }
    const timestamp =
      instantOf(details.lastUpdated, where, 'analysis.lastUpdated') ??
      instantOf(details.firstIssued, where, 'analysis.firstIssued') ??
      documentTime ??
      Number.NEGATIVE_INFINITY
    const responses = listOf(details.response).filter((response): response is string => typeof response === 'string')
    const action =
      status === 'affected' ? [responses.join(', '), detail].filter(Boolean).join(': ') || undefined : undefined
    const label = justification ? CYCLONEDX_JUSTIFICATIONS.get(justification) : undefined
    const why = [state === 'false_positive' ? 'false positive' : '', justification, detail].filter(Boolean).join(': ')
    const impact = status === 'not_affected' && why ? why : undefined
    return {
      where,
      file,
      vulnerability: name,
      ids: [name, ...listOf(vulnerability.references).map((ref) => (isObject(ref) ? textOf(ref.id) : ''))]
        .filter(Boolean)
        .map((id) => id.trim().toLowerCase()),
      products,
      status,
      ...(label && status === 'not_affected' ? { justification: label } : {}),
      ...(impact ? { impact } : {}),
      ...(action ? { action } : {}),
      timestamp,
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Matching

const DOCKER_HUB = 'index.docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/** `host/path` as the registry knows it: Docker Hub under one name, its official images under library/. */
export function normaliseRepository(text: string): string {
  const bare = text
    .trim()
    .toLowerCase()
    .replace(/^[a-z]+:\/\//, '')
    .replace(/\/+$/, '')
  const slash = bare.indexOf('/')
  const first = slash === -1 ? bare : bare.slice(0, slash)
  const hasHost = slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost')
  const host = hasHost ? (DOCKER_HUB_ALIASES.has(first) ? DOCKER_HUB : first) : DOCKER_HUB
  const path = hasHost ? bare.slice(slash + 1) : bare
  return `${host}/${host === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path}`
}

/** `[host/]path[:tag][@digest]` into its repository, tag and digest; undefined when it is not an image reference. */
export function splitImageReference(text: string): { repository: string; tag?: string; digest?: string } | undefined {
  const match = /^([a-z0-9][\w.:/-]*?)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/i.exec(text.trim())
  if (!match?.[1] || match[1].endsWith('/')) return undefined
  return {
    repository: normaliseRepository(match[1]),
    ...(match[2] ? { tag: match[2] } : {}),
    ...(match[3] ? { digest: match[3].toLowerCase() } : {}),
  }
}

/**
 * The image judged, as VEX names it: its digests (the one judged, and those the scan's files name), and its repository
 * from the reference given, or else from the scan's own `pkg:oci` purl of a digest judged (Trivy writes one).
 */
export function imageIdentity(
  image: ImageRef | undefined,
  digests: readonly string[],
  subjectPurls: readonly PackageURL[] = [],
): ImageIdentity {
  const all = new Set([...(image ? [image.digest] : []), ...digests])
  const parts = image && image.reference !== image.digest ? splitImageReference(image.reference) : undefined
  const named = (repository: string, tag?: string): ImageIdentity => ({
    digests: all,
    repository,
    name: repository.slice(repository.lastIndexOf('/') + 1),
    ...(tag ? { tag } : {}),
  })
  if (parts) return named(parts.repository, parts.tag)
  const subject = subjectPurls.find(
    (purl) =>
      purl.type === 'oci' && purl.version && all.has(purl.version.toLowerCase()) && purl.qualifiers?.repository_url,
  )
  return subject ? named(normaliseRepository(subject.qualifiers!.repository_url!)) : { digests: all }
}

/** What judging needs of --vex: the statements, and a judge for the image once the run knows it. */
export interface VexPolicy {
  readonly statements: number
  /** Each document read, by path and sha256: what an attestation's policy names. */
  readonly documents: ReadonlyArray<{ readonly file: string; readonly sha256: string }>
  readonly judgeFor: (image: ImageIdentity) => ReturnType<typeof createVexJudge>
  readonly identify: (
    image: ImageRef | undefined,
    digests: readonly string[],
    subjectPurls: readonly string[],
  ) => ImageIdentity
}

/** Reads --vex and loads the purl library, so that judging (synchronous, CPU-bound) needs no import. */
export async function prepareVex(paths: readonly string[], files: FileSystem, signal: AbortSignal): Promise<VexPolicy> {
  const documents: Array<{ file: string; sha256: string }> = []
  const statements = await loadVexStatements(paths, files, signal, documents)
  const { PackageURL } = await loadPurlLibrary()
  return {
    statements: statements.length,
    documents,
    judgeFor: (image) => createVexJudge(statements, image, PackageURL),
    identify: (image, digests, subjectPurls) => imageIdentity(image, digests, parsePurls(subjectPurls, PackageURL)),
  }
}

/** The purls that parse (a scanner's subject purl that does not is no identity of the image). */
function parsePurls(texts: readonly string[], parser: { fromString(text: string): PackageURL }): PackageURL[] {
  return texts.flatMap((text) => {
    try {
      return [parser.fromString(text)]
    } catch {
      return []
    }
  })
}

/**
 * Whether a statement's purl covers another, as OpenVEX's go-vex matches them (PurlMatches): type, namespace and name
 * equal; a purl without a version covers every version; every qualifier it states must be there with the same value.
 */
export function purlCovers(general: PackageURL, specific: PackageURL): boolean {
  if (general.type !== specific.type || general.namespace !== specific.namespace || general.name !== specific.name)
    return false
  if (general.version && general.version !== specific.version) return false
  const qualifiers = specific.qualifiers ?? {}
  return Object.entries(general.qualifiers ?? {}).every(([key, value]) => qualifiers[key] === value)
}

/** A `pkg:oci` purl of the image: its name, a digest of the image as version, and qualifiers the image has. */
function purlIsImage(purl: PackageURL, image: ImageIdentity): boolean {
  if (purl.type !== 'oci' || !image.name || purl.name.toLowerCase() !== image.name) return false
  if (purl.version && !image.digests.has(purl.version.toLowerCase())) return false
  for (const [key, value] of Object.entries(purl.qualifiers ?? {})) {
    if (key === 'repository_url' && normaliseRepository(value) === image.repository) continue
    if (key === 'tag' && value === image.tag) continue
    return false // a qualifier the gate cannot check (arch, a tag it was not given) is not a match
  }
  return true
}

function isImage(component: VexComponent, image: ImageIdentity): boolean {
  if (component.digests.some((digest) => image.digests.has(digest))) return true
  if (component.purls.some((purl) => purlIsImage(purl, image))) return true
  return component.ids.some((id) => {
    if (image.digests.has(id.toLowerCase())) return true
    const parts = splitImageReference(id)
    return Boolean(parts?.digest && image.digests.has(parts.digest) && parts.repository === image.repository)
  })
}

/** A finding's package: its purl when the source writes one (CycloneDX), else its name and version (the store). */
export interface PackageIdentity {
  readonly purl?: PackageURL
  readonly name: string
  readonly version: string
}

function isPackage(component: VexComponent, pkg: PackageIdentity): boolean {
  const sameName = (names: readonly string[], version: string | undefined) =>
    names.some((name) => name.toLowerCase() === pkg.name.toLowerCase()) && (!version || version === pkg.version)
  if (component.named) return sameName([component.named.name], component.named.version)
  // Without a purl of the finding (the store), a purl names the package as stores spell it: the name alone, or with its
  // namespace (org.apache.logging.log4j:log4j-core, @angular/core).
  const namesOf = (purl: PackageURL) =>
    purl.namespace ? [purl.name, `${purl.namespace}:${purl.name}`, `${purl.namespace}/${purl.name}`] : [purl.name]
  return component.purls.some((purl) => (pkg.purl ? purlCovers(purl, pkg.purl) : sameName(namesOf(purl), purl.version)))
}

/**
 * Whether a statement is about this finding: about the image (and, when it lists subcomponents, one is the package), or
 * about the package itself.
 */
export function statementApplies(statement: VexStatement, image: ImageIdentity, pkg: PackageIdentity): boolean {
  return statement.products.some(
    (product) =>
      (isImage(product, image) &&
        (product.subcomponents.length === 0 || product.subcomponents.some((sub) => isPackage(sub, pkg)))) ||
      isPackage(product, pkg),
  )
}

/**
 * The VEX verdict on one finding: of the statements about it, the latest (OpenVEX: a statement overrides the earlier
 * ones); statements of the same time that disagree on whether it stands are `conflicting` and suppress nothing.
 */
export function createVexJudge(
  statements: readonly VexStatement[],
  image: ImageIdentity,
  PackageURLClass: { fromString(text: string): PackageURL },
): (id: string, purl: string, name: string, version: string) => VexVerdict | undefined {
  const byId = new Map<string, VexStatement[]>()
  for (const statement of statements)
    for (const id of new Set(statement.ids)) byId.get(id)?.push(statement) ?? byId.set(id, [statement])
  const purls = new Map<string, PackageURL | undefined>()
  const parsed = (text: string) => {
    if (!purls.has(text))
      try {
        purls.set(text, PackageURLClass.fromString(text))
      } catch {
        purls.set(text, undefined) // a scanner's purl that does not parse: matched by name and version
      }
    return purls.get(text)
  }
  return (id, purl, name, version) => {
    const candidates = byId.get(id.toLowerCase())
    if (!candidates) return undefined
    const pkgPurl = purl ? parsed(purl) : undefined
    const pkg: PackageIdentity = { ...(pkgPurl ? { purl: pkgPurl } : {}), name, version }
    let latest: VexStatement[] = []
    for (const statement of candidates) {
      if (!statementApplies(statement, image, pkg)) continue
      if (!latest.length || statement.timestamp > latest[0]!.timestamp) latest = [statement]
      else if (statement.timestamp === latest[0]!.timestamp) latest.push(statement)
    }
    if (!latest.length) return undefined
    const first = latest[0]!
    const other = latest.find(
      (s) => SUPPRESSING_VEX_STATUSES.has(s.status) !== SUPPRESSING_VEX_STATUSES.has(first.status),
    )
    if (other)
      return {
        status: 'conflicting',
        source: first.where,
        detail: `${first.where} says ${first.status} and ${other.where} says ${other.status}, at the same time`,
      }
    return verdictOf(first)
  }
}

export function verdictOf(statement: VexStatement): VexVerdict {
  return {
    status: statement.status,
    source: statement.where,
    ...(statement.justification ? { justification: statement.justification } : {}),
    ...(statement.impact ? { impact: statement.impact } : {}),
    ...(statement.action ? { action: statement.action } : {}),
    ...(statement.author ? { author: statement.author } : {}),
  }
}

// ---------------------------------------------------------------------------------------------
// --print-vex: the run's decisions as OpenVEX

/** The image as a purl (purl spec, type oci): its name, digest as version, repository_url; or none without a name. */
export function imagePurl(image: ImageIdentity, digest: string | undefined, PackageURLClass: PurlConstructor): string {
  if (!image.name || !image.repository || !digest) return ''
  return new PackageURLClass('oci', undefined, image.name, digest, { repository_url: image.repository }).toString()
}

type PurlConstructor = new (
  type: string,
  namespace: string | undefined,
  name: string,
  version: string | undefined,
  qualifiers: Record<string, string> | undefined,
) => PackageURL

interface Decision {
  readonly status: VexStatus
  readonly justification?: string
  readonly impact?: string
  readonly notes?: string
  readonly action?: string
}

/** What a suppression says as OpenVEX; undefined for --only-fixed: a policy, not a statement about the code. */
export function decisionOf(finding: SuppressedFinding): Decision | undefined {
  const by = finding.suppressedBy
  if (by.kind === 'exemption')
    return {
      status: 'not_affected',
      impact: by.reason,
      notes: `${NAME} exemption until ${by.expires}${by.owner ? `, owner ${by.owner}` : ''}`,
    }
  if (by.kind === 'triage') {
    const [label = '', ...rest] = (by.justification ?? '').split(': ')
    const mapped = CYCLONEDX_JUSTIFICATIONS.get(label) ?? (OPENVEX_JUSTIFICATIONS.has(label) ? label : undefined)
    const status = CYCLONEDX_STATES.get(by.state) === 'fixed' ? 'fixed' : 'not_affected'
    const notes = `triage ${by.state}${rest.length ? `: ${rest.join(': ')}` : ''}`
    if (status === 'fixed') return { status, notes }
    return mapped
      ? { status, justification: mapped, notes }
      : { status, impact: by.justification ?? `the scan's triage says ${by.state}`, notes }
  }
  if (by.kind === 'vex')
    return {
      status: by.status === 'fixed' ? 'fixed' : 'not_affected',
      ...(by.status === 'fixed'
        ? {}
        : by.justification && OPENVEX_JUSTIFICATIONS.has(by.justification)
          ? { justification: by.justification }
          : { impact: by.impact ?? by.justification ?? 'not affected' }),
      notes: `as stated in ${by.source}`,
    }
  return undefined
}

/** A finding's package as a purl: the scanner's, or for a source without purls (the store) a generic one. */
function packagePurl(finding: Finding, PackageURLClass: PurlConstructor): string {
  if (finding.purl) return finding.purl
  return new PackageURLClass('generic', undefined, finding.package, finding.version || undefined, undefined).toString()
}

/**
 * The run's decisions as an OpenVEX v0.2.0 document: one statement per vulnerability and decision, about the image's
 * purl with the packages as subcomponents (or, without an image name, about the packages). Undefined when there is no
 * decision to state.
 */
export async function renderOpenVex(
  evaluation: Evaluation,
  image: ImageRef | undefined,
  digests: readonly string[],
  subjectPurls: readonly string[],
  now: number,
): Promise<string | undefined> {
  const { PackageURL } = await loadPurlLibrary()
  const Purl = PackageURL as unknown as PurlConstructor
  const identity = imageIdentity(image, digests, parsePurls(subjectPurls, PackageURL))
  const product = imagePurl(identity, image?.digest ?? digests[0], Purl)
  const grouped = new Map<string, { id: string; decision: Decision; packages: Set<string> }>()
  const add = (finding: Finding, decision: Decision) => {
    const key = JSON.stringify([finding.id, decision])
    const entry = grouped.get(key) ?? { id: finding.id, decision, packages: new Set<string>() }
    entry.packages.add(packagePurl(finding, Purl))
    grouped.set(key, entry)
  }
  for (const finding of evaluation.suppressed) {
    const decision = decisionOf(finding)
    if (decision) add(finding, decision)
  }
  for (const finding of [...evaluation.blocking, ...evaluation.warnings])
    if (finding.vex?.status === 'affected')
      add(finding, {
        status: 'affected',
        action: finding.vex.action ?? 'see the vendor',
        notes: `as stated in ${finding.vex.source}`,
      })
  if (!grouped.size) return undefined
  const timestamp = new Date(now).toISOString()
  const statements = [...grouped.values()].map(({ id, decision, packages }) => {
    const subcomponents = [...packages].sort().map((purl) => ({ '@id': purl }))
    return {
      vulnerability: { name: id },
      timestamp,
      products: product ? [{ '@id': product, subcomponents }] : subcomponents,
      status: decision.status,
      ...(decision.justification ? { justification: decision.justification } : {}),
      ...(decision.impact ? { impact_statement: decision.impact } : {}),
      ...(decision.action ? { action_statement: decision.action } : {}),
      ...(decision.notes ? { status_notes: decision.notes } : {}),
    }
  })
  const digestOfStatements = createHash('sha256').update(JSON.stringify(statements)).digest('hex')
  const document = {
    '@context': OPENVEX_CONTEXT,
    '@id': `https://openvex.dev/docs/public/${NAME}-${digestOfStatements}`,
    author: NAME,
    role: 'vulnerability policy gate',
    timestamp,
    version: 1,
    tooling: `${NAME} ${VERSION}`,
    statements,
  }
  return toJson(document)
}

// ---------------------------------------------------------------------------------------------
// Reading --vex

export const MAX_VEX_BYTES = 16 * 1024 * 1024

/** Every statement of the --vex paths (files, or folders such as a mounted ConfigMap), read and checked. */
export async function loadVexStatements(
  paths: readonly string[],
  files: FileSystem,
  signal: AbortSignal,
  documents: Array<{ file: string; sha256: string }> = [],
): Promise<VexStatement[]> {
  const statements: VexStatement[] = []
  for (const path of paths) {
    const names = files.list(path)
    if (names?.length === 0)
      throw new UsageError('VEX', `--vex ${path} is a folder with no file in it: mount the VEX documents there`)
    for (const file of names ? names.map((name) => join(path, name)) : [path]) {
      const text = await files.read(file, '--vex', {
        signal,
        limits: {
          maxBytes: MAX_VEX_BYTES,
          tooLarge: () =>
            new UsageError('VEX', `--vex ${file} is larger than ${MAX_VEX_BYTES / 2 ** 20} MiB: split the document`),
        },
      })
      documents.push({ file, sha256: createHash('sha256').update(text).digest('hex') })
      const document = parseJsonConfig(
        text,
        'VEX',
        `--vex ${file} is not JSON: give an OpenVEX or CycloneDX VEX document`,
      )
      statements.push(...(await vexStatementsFrom(document, file)))
      if (statements.length > MAX_VEX_STATEMENTS)
        throw new UsageError('VEX', `--vex: more than ${MAX_VEX_STATEMENTS} statements in all: give fewer documents`)
    }
  }
  return statements
}
