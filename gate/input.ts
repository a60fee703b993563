import { REPORTS_PAGE, TRIAGE_PAGE, isObject, listAt, objectAt, textOf } from './json.ts'
import {
  FORMATS,
  GATES,
  MIN_TOKEN_LENGTH,
  MODES,
  OPTIONS,
  REPORT_FORMATS,
  UNKNOWN_AS,
  UsageError,
} from './vocabulary.ts'
import type {
  Exemption,
  Format,
  Gate,
  ImageRef,
  Mode,
  PackageMatch,
  ReportFormat,
  TriageDecision,
  UnknownAs,
  UsageCode,
  OciRef,
} from './vocabulary.ts'

// ---------------------------------------------------------------------------------------------
// Pure functions: input parsing

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/i
const DNS_LABEL = String.raw`[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`
/** A registry host as the distribution spec's reference grammar has it: DNS labels or a bracketed IPv6, and a port. */
export const DOMAIN = String.raw`(?:${DNS_LABEL}(?:\.${DNS_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?`
export const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
export const NAME_RE = new RegExp(
  String.raw`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\w][\w.-]{0,127})?$`,
)

/** `[registry[:port]/]repo[:tag]@sha256:<64 hex>` or a bare `sha256:<64 hex>`. */
export function parseImageRef(input: string, what = 'image'): ImageRef {
  const reference = input.trim()
  if (!reference) {
    throw new UsageError(
      'IMAGE',
      `no ${what} given: pass the image to check as name@sha256:<64 hex> or sha256:<64 hex>`,
    )
  }
  const at = reference.lastIndexOf('@')
  const name = at === -1 ? undefined : reference.slice(0, at)
  const digest = at === -1 ? reference : reference.slice(at + 1)
  if (!DIGEST_RE.test(digest)) {
    throw new UsageError(
      'IMAGE',
      `${what} "${reference}" has no sha256 digest: pass name@sha256:<64 hex> or sha256:<64 hex> (the store keys ` +
        `scans by digest; a tag can move)`,
    )
  }
  if (name !== undefined && !NAME_RE.test(name)) {
    throw new UsageError(
      'IMAGE',
      `${what} "${reference}" has an invalid name before the @: use [registry[:port]/]repository[:tag]@sha256:<64 hex>`,
    )
  }
  return { reference, digest: digest.toLowerCase() }
}

export const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `500ms`, `10s`, `5m`, `1h`, `1h30m` or plain seconds, to milliseconds; more than zero. */
export function parseDuration(text: string, option: string): number {
  const value = text.trim()
  let ms: number
  if (/^\d+(?:\.\d+)?$/.test(value)) {
    ms = Number(value) * 1_000
  } else if (/^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(value)) {
    ms = 0
    for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
      ms += Number(amount) * DURATION_UNITS_MS[unit!]!
  } else {
    throw new UsageError(
      'DURATION',
      `${option} "${text}" is not a duration: use 500ms, 10s, 5m, 1h, 1h30m or plain seconds`,
    )
  }
  if (!(ms >= 1)) throw new UsageError('DURATION', `${option} "${text}" must be longer than zero`)
  return Math.round(ms)
}

/** 65_000 → `1m05s`; for progress lines. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`
  const total = Math.round(ms / 1_000)
  const h = Math.floor(total / 3_600)
  const m = Math.floor((total % 3_600) / 60)
  const s = total % 60
  if (h) return `${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s`
  if (m) return `${m}m${String(s).padStart(2, '0')}s`
  return `${s}s`
}

export function parseChoice<T extends string>(
  text: string,
  option: string,
  choices: readonly T[],
  what: string,
  code: UsageCode,
): T {
  const value = text.trim().toLowerCase()
  if ((choices as readonly string[]).includes(value)) return value as T
  throw new UsageError(
    code,
    `${option} "${text}" is not a ${what}: use ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`,
  )
}

export const parseGate = (text: string, option = '--gate') => parseChoice<Gate>(text, option, GATES, 'gate', 'GATE')
export const parseFormat = (text: string, option = '--format') =>
  parseChoice<Format>(text, option, FORMATS, 'format', 'FORMAT')
export const parseMode = (text: string, option = '--mode') => parseChoice<Mode>(text, option, MODES, 'mode', 'MODE')
export const parseReportFormat = (text: string, option = '--report-format') =>
  parseChoice<ReportFormat>(text, option, REPORT_FORMATS, 'report format', 'REPORT_FORMAT')
export const parseUnknownAs = (text: string, option = '--unknown-as') =>
  parseChoice<UnknownAs>(text, option, UNKNOWN_AS, 'severity', 'UNKNOWN_AS')

export const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
}

/** `1048576`, `512KiB`, `10MB`, `256MiB` to bytes; more than zero. */
export function parseSize(text: string, option = '--max-body-size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : 0
  if (!(bytes >= 1))
    throw new UsageError(
      'SIZE',
      `${option} "${text}" is not a size: use bytes, or a number with KiB, MiB, GiB, KB, MB or GB (e.g. 256MiB)`,
    )
  return bytes
}

/** A Kubernetes label selector of equalities and inequalities (key=value, key!=value), comma-separated. */
export function parseLabelSelector(text: string, option = '--scan-selector'): string {
  const term = String.raw`[\w./-]+\s*(?:==?|!=)\s*[\w.-]*`
  if (!new RegExp(`^${term}(?:\\s*,\\s*${term})*$`).test(text.trim())) {
    throw new UsageError(
      'SCAN_RESULT',
      `${option} "${text}" is not a label selector: use key=value[,key=value] (e.g. carto.run/workload-name=app)`,
    )
  }
  return text.trim()
}

export function parseBoolean(text: string, option: string): boolean {
  const value = text.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(value)) return true
  if (['0', 'false', 'no', 'off', ''].includes(value)) return false
  throw new UsageError('BOOLEAN', `${option} "${text}" is not true or false`)
}

export function parseScore(text: string, option = '--fail-on-score'): number {
  const value = text.trim()
  const score = Number(value)
  if (!/^\d+(?:\.\d+)?$/.test(value) || score > 10)
    throw new UsageError('SCORE', `${option} "${text}" is not a CVSS score: use a number from 0 to 10, e.g. 9 or 7.5`)
  return score
}

export const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/
export const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/

/** A calendar day that exists: month 1 to 12, day within that month (leap years counted). */
export function isRealDate(year: number, month: number, day: number): boolean {
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate()
}

/**
 * An RFC 3339 instant that exists, as ms since the epoch; undefined otherwise. Date.parse alone would
 * take hour 24, roll February 30 over into March, or give NaN for hour 25 and let it pass unnoticed.
 * A leap second (:60) is refused: Node's clock has none.
 */
export function parseInstant(text: string): number | undefined {
  const match = RFC3339_RE.exec(text)
  if (!match) return undefined
  const [year, month, day, hour, minute, second, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part))) as number[]
  if (
    !isRealDate(year!, month!, day!) ||
    hour! > 23 ||
    minute! > 59 ||
    second! > 59 ||
    offsetHours > 23 ||
    offsetMinutes > 59
  )
    return undefined
  return Date.parse(text.replace(' ', 'T'))
}

/** An RFC 3339 instant, or a duration before `now` (`2h`: two hours ago), to ms since the epoch. */
export function parseNewerThan(text: string, now: number, option = '--newer-than'): number {
  const value = text.trim()
  if (RFC3339_RE.test(value)) {
    const instant = parseInstant(value)
    if (instant === undefined)
      throw new UsageError(
        'TIME',
        `${option} "${value}" is not a real time: check the month (1-12), the day of that month, hour (0-23), minute ` +
          `and second (0-59)`,
      )
    return instant
  }
  try {
    return now - parseDuration(value, option)
  } catch {
    throw new UsageError(
      'TIME',
      `${option} "${text}" is neither an RFC 3339 time (2026-11-28T09:00:00Z) nor a duration (2h, 30m)`,
    )
  }
}

/**
 * A plain date applies to the end of that day (UTC); a timestamp, to that instant. Undefined when it is no real day or
 * instant.
 */
export function parseExpiry(text: string): number | undefined {
  const date = DATE_RE.exec(text)
  if (date) {
    const [year, month, day] = date.slice(1).map(Number) as [number, number, number]
    return isRealDate(year, month, day) ? Date.UTC(year, month - 1, day, 23, 59, 59, 999) : undefined
  }
  return parseInstant(text)
}

/**
 * The exemptions of a parsed YAML document: `exemptions:` a list of entries with id, reason and expires
 * (required), package (a name, or {name, version}) and owner. Throws a UsageError naming the entry and field.
 */
export function exemptionsFrom(document: unknown, origin: string): Exemption[] {
  const fail = (where: string, problem: string) => new UsageError('EXEMPTIONS', `${origin}: ${where}: ${problem}`)
  if (!isObject(document) || !Array.isArray(document.exemptions)) {
    throw fail('the file', 'must hold a top-level "exemptions:" list (see docs/policy.md, Exemptions)')
  }
  const known = new Set(['id', 'package', 'reason', 'expires', 'owner', 'kev'])
  return document.exemptions.map((raw: unknown, index: number): Exemption => {
    const label = isObject(raw) && typeof raw.id === 'string' ? `entry ${index + 1} (${raw.id})` : `entry ${index + 1}`
    if (!isObject(raw)) throw fail(label, 'is not a mapping of id, package, reason, expires, owner')
    const unknownKey = Object.keys(raw).find((key) => !known.has(key))
    if (unknownKey) throw fail(label, `"${unknownKey}" is not a field: use id, package, reason, expires, owner, kev`)
    if (raw.kev !== undefined && raw.kev !== 'accepted')
      throw fail(label, `"kev" may only be "accepted" (the entry then suppresses a known-exploited finding too)`)
    const field = (key: string, example: string): string => {
      const value = raw[key]
      if (value === undefined || value === null || String(value).trim() === '')
        throw fail(label, `"${key}" is missing: ${example}`)
      if (typeof value !== 'string' && typeof value !== 'number') throw fail(label, `"${key}" must be text`)
      return String(value).trim()
    }
    const id = field('id', 'the CVE or GHSA it exempts, e.g. CVE-2023-0286')
    const reason = field(
      'reason',
      'say why the finding is acceptable, e.g. "not reachable: we never parse X.400 addresses"',
    )
    const expires = field('expires', 'the last day it applies, e.g. 2027-01-31')
    const expiresAt = parseExpiry(expires)
    if (expiresAt === undefined)
      throw fail(
        label,
        `"expires" "${expires}" is not a real date: use YYYY-MM-DD or an RFC 3339 time that exists (month 1-12, a ` +
          `day of that month, hour 0-23)`,
      )
    let pkg: PackageMatch | undefined
    if (typeof raw.package === 'string' && raw.package.trim()) pkg = { name: raw.package.trim() }
    else if (isObject(raw.package) && typeof raw.package.name === 'string' && raw.package.name.trim()) {
      // A typo here (versions: for version:) would otherwise widen the exemption to every version.
      const unknownPackageKey = Object.keys(raw.package).find((key) => key !== 'name' && key !== 'version')
      if (unknownPackageKey)
        throw fail(label, `"package.${unknownPackageKey}" is not a field: package takes name and an optional version`)
      if (
        raw.package.version !== undefined &&
        raw.package.version !== null &&
        typeof raw.package.version !== 'string' &&
        typeof raw.package.version !== 'number'
      ) {
        throw fail(label, '"package.version" must be text')
      }
      const version =
        raw.package.version === undefined || raw.package.version === null
          ? undefined
          : String(raw.package.version).trim()
      pkg = { name: raw.package.name.trim(), ...(version ? { version } : {}) }
    } else if (raw.package !== undefined && raw.package !== null) {
      throw fail(label, '"package" must be a name, or a mapping with name and an optional version')
    }
    const owner = raw.owner === undefined || raw.owner === null ? undefined : String(raw.owner).trim()
    return {
      id,
      reason,
      expires,
      expiresAt,
      ...(pkg ? { package: pkg } : {}),
      ...(owner ? { owner } : {}),
      ...(raw.kev === 'accepted' ? { acceptsKev: true as const } : {}),
    }
  })
}

/** One page of `GET /api/v1/triage`: the current analysis of each record. */
export function triagePageFrom(document: unknown): { decisions: TriageDecision[]; records: number; lastPage: number } {
  const page = objectAt(TRIAGE_PAGE, document, 'it')
  const records = listAt(TRIAGE_PAGE, page, 'Results', '')
  const decisions: TriageDecision[] = []
  records.forEach((raw, index) => {
    const record = objectAt(TRIAGE_PAGE, raw, `Results[${index}]`)
    const vulnerability = isObject(record.vulnerability) ? record.vulnerability : {}
    const pkg = isObject(record.package) ? record.package : {}
    const analyses = listAt(TRIAGE_PAGE, record, 'Analysis', `Results[${index}].`)
    const current = analyses.at(-1)
    const id = textOf(vulnerability.CVEID)
    if (!id || !isObject(current)) return
    const name = textOf(pkg.Name)
    const version = textOf(pkg.Version)
    const justification = textOf(current.Justification)
    decisions.push({
      id,
      state: textOf(current.State).toLowerCase(),
      ...(name ? { package: { name, ...(version ? { version } : {}) } } : {}),
      ...(justification ? { justification } : {}),
    })
  })
  const lastPage = typeof page.LastPage === 'number' ? page.LastPage : 1
  return { decisions, records: records.length, lastPage }
}

/** The newest `GeneratedAt` on a page of `GET /api/v1/reports?ordering=DESC`, ms since the epoch. */
export function newestReportFrom(document: unknown): number | undefined {
  const page = objectAt(REPORTS_PAGE, document, 'it')
  let newest: number | undefined
  listAt(REPORTS_PAGE, page, 'Results', '').forEach((raw, index) => {
    const generated = Date.parse(textOf(objectAt(REPORTS_PAGE, raw, `Results[${index}]`).GeneratedAt))
    if (!Number.isNaN(generated) && (newest === undefined || generated > newest)) newest = generated
  })
  return newest
}

/** The seed's `host[:port][/prefix]` (https implied) or an https:// URL. http:// would send the token in clear. */
export function parseStoreUrl(text: string, option = '--url'): URL {
  const value = text.trim()
  if (/^http:\/\//i.test(value)) {
    throw new UsageError('URL', `${option} "${value}" uses http://: the token would travel in clear; use https://`)
  }
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value)
  // `http:/host:8443` or `https:host` would otherwise become the host "http" or "https".
  if (!hasScheme && /^[a-z][a-z0-9+.-]*:(?!\d+(?:\/|$))/i.test(value)) {
    throw new UsageError(
      'URL',
      `${option} "${value}" has a malformed scheme: use host[:port][/prefix] or https://host[:port][/prefix]`,
    )
  }
  let url: URL
  try {
    url = new URL(hasScheme ? value : `https://${value}`)
  } catch {
    throw new UsageError(
      'URL',
      `${option} "${value}" is not a URL: use host[:port][/prefix] or https://host[:port][/prefix]`,
    )
  }
  if (url.protocol !== 'https:') throw new UsageError('URL', `${option} "${value}" must use https://`)
  if (!url.hostname) throw new UsageError('URL', `${option} "${value}" names no host: use host[:port][/prefix]`)
  if (url.username || url.password) {
    throw new UsageError('URL', `${option} must not hold credentials: give the token with --token-file or ACCESS_TOKEN`)
  }
  if (url.search || url.hash) throw new UsageError('URL', `${option} "${value}" must not have a ?query or #fragment`)
  url.pathname = url.pathname.replace(/\/+$/, '')
  return url
}

/** `{base}{path}?{query}`, keeping the base's path prefix. */
export function storeEndpoint(baseUrl: URL, path: string, query: Record<string, string> = {}): URL {
  const url = new URL(baseUrl)
  url.pathname = `${baseUrl.pathname.replace(/\/+$/, '')}${path}`
  url.search = new URLSearchParams(query).toString()
  return url
}

export function imageEndpoint(baseUrl: URL, digest: string): URL {
  return storeEndpoint(baseUrl, `/api/v1/images/${digest}`)
}

/**
 * A bearer token must be one visible ASCII word (otherwise the header is invalid, or the file is wrong), and
 * long enough that redacting it from every output cannot cut into ordinary words.
 */
export function checkToken(raw: string, origin: string): string {
  const token = raw.trim()
  if (!token) throw new UsageError('TOKEN', `the token from ${origin} is empty: put the store's access token there`)
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new UsageError(
      'TOKEN',
      `the token from ${origin} has spaces or non-ASCII characters: it must be the bare token, as in secret ` +
        `metadata-store-access-token`,
    )
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(
      'TOKEN',
      `the token from ${origin} has ${token.length} characters, too short to be a real one (a service-account token ` +
        `has hundreds; at least ${MIN_TOKEN_LENGTH} are needed to keep it out of the output safely)`,
    )
  }
  return token
}

export const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'] as const

/** The proxy variables that are set must be http(s) URLs; undici would otherwise fail at the first request. */
export function checkProxyEnv(env: Readonly<Record<string, string | undefined>>): boolean {
  let proxied = false
  for (const name of PROXY_VARIABLES) {
    const value = env[name]?.trim()
    if (!value) continue
    proxied = true
    let url: URL | undefined
    try {
      url = new URL(value)
    } catch {}
    if (!url || !/^https?:$/.test(url.protocol) || !url.hostname) {
      throw new UsageError(
        'PROXY',
        `${name} is not a proxy URL: use http://host:port (credentials, if any, as http://user:password@host:port)`,
      )
    }
  }
  return proxied
}

export type ParsedArgs =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly values: ReadonlyMap<string, string>; readonly positionals: readonly string[] }

/**
 * Splits argv by the OPTIONS table: `--flag value`, `--flag=value`, `--` ends options. --help wins over
 * anything else given, valid or not; a flag given twice is refused: for a security gate, which of
 * `--gate high --gate none` was meant must not be a guess. A repeatable flag (--vex) collects its values as one
 * comma-separated list, as its variable holds them.
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const options = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length)
  if (options.some((arg) => arg === '-h' || arg === '--help')) return { kind: 'help' }
  if (options.includes('--version')) return { kind: 'version' }
  const values = new Map<string, string>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const spec = OPTIONS.find((option) => option.flag === flag)
    if (!spec) {
      const hint =
        flag === '--token'
          ? ': the token is read from a file (--token-file) or ACCESS_TOKEN, never from a flag'
          : ': run with --help for the options'
      throw new UsageError('OPTION', `unknown option ${flag}${hint}`)
    }
    let value: string | undefined
    if (!spec.value) {
      if (eq !== -1)
        throw new UsageError('OPTION', `${flag} takes no value; set ${spec.env ?? 'it'}=false to turn it off`)
      value = 'true'
    } else {
      value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
      if (value === undefined) throw new UsageError('OPTION', `${flag} needs a value (${spec.value})`)
    }
    if (spec.repeatable) {
      if (value.includes(','))
        throw new UsageError('OPTION', `${flag} "${value}" holds a comma: give ${flag} once for each ${spec.value}`)
      values.set(flag, values.has(flag) ? `${values.get(flag)},${value}` : value)
      continue
    }
    if (values.has(flag))
      throw new UsageError('OPTION', `${flag} is given twice ("${values.get(flag)}", then "${value}"): give it once`)
    values.set(flag, value)
  }
  return { kind: 'run', values, positionals }
}

export const TAG_RE = /^[\w][\w.-]{0,127}$/
export const REPOSITORY_RE = new RegExp(String.raw`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`)
export const HOST_RE = new RegExp(String.raw`^${DOMAIN}$`)

/**
 * `host[:port]/repository:tag`, `host[:port]/repository@sha256:<64 hex>` or both; the registry host must be named (a
 * scan result always is).
 */
export function parseOciRef(text: string, option: string): OciRef {
  const reference = text.trim()
  const fail = (problem: string) =>
    new UsageError(
      'SCAN_RESULT',
      `${option} "${reference}" ${problem}: use registry.example.com/project/app-scan-results@sha256:<64 hex> (or ` +
        `:tag), as status.scanResult of an ImageVulnerabilityScan shows it`,
    )
  const at = reference.indexOf('@')
  const digest = at === -1 ? undefined : reference.slice(at + 1)
  if (digest !== undefined && !DIGEST_RE.test(digest)) throw fail('has a digest that is not sha256:<64 hex>')
  const named = at === -1 ? reference : reference.slice(0, at)
  const slash = named.indexOf('/')
  const registry = slash === -1 ? '' : named.slice(0, slash)
  if (
    !registry ||
    !(registry.includes('.') || registry.includes(':') || registry === 'localhost') ||
    !HOST_RE.test(registry)
  )
    throw fail('names no registry host')
  const path = named.slice(slash + 1)
  const colon = path.lastIndexOf(':')
  const repository = colon === -1 ? path : path.slice(0, colon)
  const tag = colon === -1 ? undefined : path.slice(colon + 1)
  if (!REPOSITORY_RE.test(repository)) throw fail('has an invalid repository')
  if (tag !== undefined && !TAG_RE.test(tag)) throw fail('has an invalid tag')
  if (tag === undefined && digest === undefined) throw fail('has neither tag nor digest')
  return {
    reference,
    registry,
    repository,
    tagOrDigest: digest?.toLowerCase() ?? tag!,
    ...(digest ? { digest: digest.toLowerCase() } : {}),
  }
}
