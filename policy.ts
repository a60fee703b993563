/**
 * amr-policy-gate: a vulnerability policy gate for Tanzu Application Platform supply chains.
 *
 * It waits until the Metadata Store (AMR) holds the scan of one image digest, reads it with
 * `GET /api/v1/images/{digest}`, takes each vulnerability's highest rating as its severity, and fails
 * (exit 1) when any is at or above the gate. When it cannot reach a verdict (timeout, rejected token,
 * TLS failure, malformed answer) it says why and exits 3: it never passes by accident.
 * It replaces the curl + jq script of the TAP documentation; see README.md.
 */
import { accessSync, closeSync, constants as fsConstants, createReadStream, existsSync, fstatSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { getHeapStatistics } from 'node:v8'

declare const __VERSION__: string // replaced by build.mjs with package.json's version
export const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev'
export const NAME = 'amr-policy-gate'

// ---------------------------------------------------------------------------------------------
// Exit codes: this table feeds --help, the README and the tests.

export const EXIT = { PASS: 0, VIOLATION: 1, USAGE: 2, NO_VERDICT: 3, SIGINT: 130, SIGTERM: 143 } as const

export const EXIT_CODES: ReadonlyArray<readonly [code: number, meaning: string]> = [
  [EXIT.PASS, 'passed: nothing blocks at the gate, or gate none'],
  [EXIT.VIOLATION, 'policy violated: a finding blocks (at or above the gate, or by --fail-on-score or --unknown-as); exemptions and triage can suppress it'],
  [EXIT.USAGE, 'invalid usage or configuration (or Node older than 24), found before any request'],
  [
    EXIT.NO_VERDICT,
    "no verdict: timed out, token rejected (401/403), TLS failure, the store's host does not resolve, malformed response, a scan file the gate cannot account for, the scan of another image, a body too large for --max-body-size or for memory, the store kept failing, or the Tekton results could not be written",
  ],
  [EXIT.SIGINT, 'interrupted by SIGINT'],
  [EXIT.SIGTERM, "stopped by SIGTERM (Tekton's step timeout, a cancelled run), within a second"],
]

export const DEFAULT_CA_PATH = '/var/cert/caCrt'
/** Where a pod finds its service account's token, ca.crt and namespace. */
export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
/** One request may not take longer than this (the overall deadline may cut it sooner). */
const REQUEST_TIMEOUT_MS = 60_000
/** Connecting to the store, or to the proxy, may not take longer than this. */
const CONNECT_TIMEOUT_MS = 10_000
/** Backoff after a failed request (429, 5xx, network error): 1 s doubling up to 30 s. */
const RETRY_BASE_MS = 1_000
const RETRY_MAX_MS = 30_000
/** The text summary lists at most this many blocking findings; --format json lists all. */
const MAX_LISTED_FINDINGS = 20
/** Exemptions that expire within this are warned about. */
const EXPIRY_WARNING_DAYS = 14
/** Triage states that suppress a finding; in_triage and exploitable suppress nothing. */
export const SUPPRESSING_TRIAGE_STATES: ReadonlySet<string> = new Set(['not_affected', 'false_positive', 'resolved', 'resolved_with_pedigree'])
/** Triage pages are fetched this many records at a time, and at most this many pages. */
const TRIAGE_PAGE_SIZE = 100
const MAX_TRIAGE_PAGES = 1_000
/** Node cannot wait longer than this in one timer; a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** Tokens shorter than this are refused: redacting them would cut into ordinary words (real ones are hundreds of characters). */
const MIN_TOKEN_LENGTH = 16
/** The token, CA and exemptions files are read up to this size; a larger one is a usage error. */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024
/** A host that does not resolve (ENOTFOUND) is retried this many times in a row, to ride out a DNS restart, then ends the run. */
const MAX_DNS_FAILURES = 3
/** Text output: the widest a field from outside may be before it is cut with an ellipsis. */
const TEXT_WIDTH = { id: 40, package: 80, note: 160 } as const
/** Machine reports: the longest a field from outside may be, and the most findings listed per list (worst first). */
const MAX_REPORT_FIELD = 256
const MAX_REPORTED_FINDINGS = 5_000
/** Tekton results: the longest vulnerability ID in `blocking`. */
const MAX_RESULT_ID = 64
/** A body larger than this gets a progress line before it is parsed. */
const LARGE_BODY_BYTES = 8 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Options: this table feeds the parser, the defaults, --help, the README's table and the tests.

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'] as const
export type Severity = (typeof SEVERITIES)[number]
export const GATES = ['none', 'low', 'medium', 'high', 'critical'] as const
export type Gate = (typeof GATES)[number]
export const FORMATS = ['text', 'json'] as const
export type Format = (typeof FORMATS)[number]
export const MODES = ['enforce', 'audit'] as const
export type Mode = (typeof MODES)[number]
export const REPORT_FORMATS = ['json', 'sarif', 'junit'] as const
export type ReportFormat = (typeof REPORT_FORMATS)[number]
export const UNKNOWN_AS = ['low', 'medium', 'high', 'critical', 'ignore'] as const
export type UnknownAs = (typeof UNKNOWN_AS)[number]

export interface OptionSpec {
  readonly flag: `--${string}`
  /** The environment variable that holds the same value (a flag wins over it). */
  readonly env?: string
  /** The value's name in --help; absent for a switch. */
  readonly value?: string
  /** The only values accepted, in any case. */
  readonly choices?: readonly string[]
  /** The value when neither the flag nor the variable gives one, read like a given value. */
  readonly default?: string
  /** Said instead of a default when there is no single one. */
  readonly defaultText?: string
  /** No default: the run needs it. */
  readonly required?: true
  /** One line for --help. */
  readonly help: string
  /** More for the README's table than --help has room for. */
  readonly more?: string
}

const OPTION_TABLE = [
  { flag: '--gate', env: 'GATE', value: 'LEVEL', choices: GATES, required: true, help: 'the lowest severity that fails; none passes without contacting the store', more: 'Any case. `none` exits 0, as the seed does.' },
  { flag: '--url', env: 'METADATA_STORE_URL', value: 'URL', help: 'the store: host[:port][/prefix] (https implied) or https://...; http:// is refused', more: 'The seed\'s form works as is. `http://` would send the token in clear; a malformed scheme (`http:/host`, `https:host`) is refused rather than read as the host `http`.' },
  { flag: '--token-file', env: 'ACCESS_TOKEN_FILE', value: 'FILE', help: 'file holding the bearer token (or the token itself in ACCESS_TOKEN); no flag takes its value', more: `Surrounding whitespace is trimmed. A token under ${MIN_TOKEN_LENGTH} characters is refused: it could not be redacted from output without cutting into words. A path that cannot be read is not echoed back (it may be the token pasted in the wrong place).` },
  { flag: '--ca-cert', env: 'METADATA_STORE_CA_CERT', value: 'FILE', defaultText: '/var/cert/caCrt if present', help: "PEM file with the store's CA, trusted besides the default roots; the variable may hold the PEM itself", more: 'As in the TAP docs.' },
  { flag: '--timeout', env: 'POLICY_TIMEOUT', value: 'DURATION', default: '30m', help: 'a hard bound on the whole run: 500ms, 10s, 5m, 1h, 1h30m or plain seconds', more: 'It covers reading the files named here, connecting (through a proxy or not), every request and every wait. A wait longer than Node\'s timers allow (24.8 days) is clamped.' },
  { flag: '--poll-interval', env: 'POLICY_POLL_INTERVAL', value: 'DURATION', default: '5s', help: 'pause between polls while the store answers 404 (jittered by 20%)' },
  { flag: '--input', value: 'FILE', help: 'evaluate a saved GET /api/v1/images/{digest} body (- for stdin) instead of asking the store', more: 'A FIFO (`--input <(...)`) works; it is read within `--timeout` and `--max-body-size`.' },
  { flag: '--scan-result', env: 'POLICY_SCAN_RESULT', value: 'REF|auto|store', help: "evaluate the scanner's published results at REF (an OCI reference), or with auto those of the image's ImageVulnerabilityScan, instead of asking the store", more: 'See [Where the scan comes from](#where-the-scan-comes-from). REF is what `status.scanResult` shows; `auto` runs in a pod and needs to read ImageVulnerabilityScans in its namespace. The store is not asked, so no token or `--url` is needed. `store` (or empty) asks the store, the default: a workload\'s way back from a chain whose default is `auto`.' },
  { flag: '--scan-selector', env: 'POLICY_SCAN_SELECTOR', value: 'SELECTOR', help: 'a label selector for the ImageVulnerabilityScans to look at (e.g. carto.run/workload-name=app), with --scan-result auto or while waiting for the store', more: 'Without it every scan in the pod\'s namespace is listed and the image\'s is picked by its digest. Waiting for the store in a pod whose service account may list scans, the progress lines say what the scan is doing. A fixed --scan-result or --input lists no scans, so the selector (which the template always passes) goes unused there.' },
  { flag: '--registry-config', env: 'POLICY_REGISTRY_CONFIG', value: 'FILE', defaultText: '$DOCKER_CONFIG/config.json if present', help: 'Docker config (config.json or a .dockerconfigjson, as secret registry-credentials holds) with credentials for the scan results\' registry', more: 'Only `auths` entries are read (`auth`, or `username` and `password`); credential helpers cannot run in the image. Without credentials the registry is asked anonymously.' },
  { flag: '--registry-ca-cert', env: 'POLICY_REGISTRY_CA_CERT', value: 'FILE', help: "PEM file with the scan results' registry CA, trusted besides the default roots" },
  { flag: '--format', env: 'POLICY_FORMAT', value: 'FORMAT', choices: FORMATS, default: 'text', help: 'text is for people; json writes one document on stdout', more: 'The JSON schema is under [JSON output](#json-output).' },
  { flag: '--results-dir', env: 'POLICY_RESULTS_DIR', value: 'DIR', help: 'also write Tekton results there, one file each (/tekton/results in a Task)', more: 'See the results table above. An empty value or a folder that is not writable is a usage error (exit 2), found before any request.' },
  { flag: '--exemptions', env: 'POLICY_EXEMPTIONS', value: 'FILE', help: 'YAML exemptions (id, package, reason, expires, owner) that suppress matching findings until they expire', more: 'See [Exemptions](#exemptions).' },
  { flag: '--triage', env: 'POLICY_TRIAGE', help: "also suppress findings the store's triage marks not_affected, false_positive, resolved or resolved_with_pedigree", more: 'The variable takes `true` or `false`.' },
  { flag: '--newer-than', env: 'POLICY_NEWER_THAN', value: 'TIME', help: 'wait until the store holds a scan report generated at or after TIME (RFC 3339, or a duration such as 2h before now)', more: 'A time that does not exist (hour 25, month 13, February 30, second 60) is refused (exit 2).' },
  { flag: '--only-fixed', env: 'POLICY_ONLY_FIXED', help: 'only findings with a known fix can block; the others are listed as not fixed', more: 'A finding whose fix its source does not say (the Metadata Store, an older Grype, another producer) counts as fixable, and the summary says how many. The variable takes `true` or `false`.' },
  { flag: '--warn-at', env: 'POLICY_WARN_AT', value: 'LEVEL', choices: GATES, default: 'none', help: 'report findings from this severity up that do not block as warnings (below the gate); the exit code is unchanged', more: 'See [Warnings](#warnings).' },
  { flag: '--kev', env: 'POLICY_KEV', value: 'FILE', help: "CISA's Known Exploited Vulnerabilities catalog (JSON): a finding it lists blocks at any severity", more: 'See [Known-exploited vulnerabilities](#known-exploited-vulnerabilities). Never downloaded: mount a copy.' },
  { flag: '--baseline', env: 'POLICY_BASELINE', value: 'IMAGE', help: 'the image running today (name@sha256:...): only findings new in the image checked, or worse, block', more: 'Read from the same source as the image. See [No new vulnerabilities](#no-new-vulnerabilities).' },
  { flag: '--baseline-input', env: 'POLICY_BASELINE_INPUT', value: 'FILE', help: "the baseline's saved document (a store body or CycloneDX), for --input or a fixed --scan-result" },
  { flag: '--scan-policy', env: 'POLICY_SCAN_POLICY', value: 'FILE', help: 'a Scan 1.0 ScanPolicy (YAML) whose Rego is one of TAP\'s templates: its severities give the gate, its ignored CVEs exemptions', more: 'Flags and variables given win over it. See [From Scan 1.0](#from-scan-10-scanpolicies).' },
  { flag: '--print-exemptions', help: 'with --scan-policy: write the equivalent exemptions YAML and gate on stdout, and exit' },
  { flag: '--fail-on-score', env: 'POLICY_FAIL_ON_SCORE', value: 'N', help: 'also fail on any rating whose CVSS score is at least N (0 to 10)' },
  { flag: '--unknown-as', env: 'POLICY_UNKNOWN_AS', value: 'SEVERITY', choices: UNKNOWN_AS, default: 'ignore', help: 'what a vulnerability without a known severity counts as' },
  { flag: '--mode', env: 'POLICY_MODE', value: 'MODE', choices: MODES, default: 'enforce', help: 'audit evaluates and reports the same, but exits 0 and says plainly that the gate would have failed' },
  { flag: '--report-file', env: 'POLICY_REPORT_FILE', value: 'PATH', help: 'also write a machine report to PATH', more: 'An empty value, a folder, a path ending in `/` or a missing or unwritable folder is a usage error (exit 2), found before any request.' },
  { flag: '--report-format', env: 'POLICY_REPORT_FORMAT', value: 'FORMAT', choices: REPORT_FORMATS, defaultText: 'from the file name: .sarif and .sarif.json sarif, .xml junit, else json', help: 'JSON (the --format json document), SARIF 2.1.0 for code-scanning dashboards, or JUnit XML for CI test views' },
  { flag: '--max-body-size', env: 'POLICY_MAX_BODY_SIZE', value: 'SIZE', default: '24MiB', help: 'a larger answer (or --input) ends with exit 3: bytes, or with KiB, MiB, GiB, KB, MB, GB', more: 'Real reports are a few MB; the default is what the Task\'s 512Mi evaluates with room to spare ([Memory](#memory)). Raise it together with the step\'s memory.' },
  { flag: '--help', help: 'show this help and exit, whatever else is given' },
  { flag: '--version', help: 'show the version' },
] as const satisfies readonly OptionSpec[]

export type Flag = (typeof OPTION_TABLE)[number]['flag']
export const OPTIONS: readonly OptionSpec[] = OPTION_TABLE

/** Variables read without a flag of their own. */
export const ENVIRONMENT: ReadonlyArray<{ readonly name: string; readonly help: string }> = [
  { name: 'ACCESS_TOKEN', help: 'the bearer token itself, when no token file is given (as the seed Task passes it from secret metadata-store-access-token)' },
  { name: 'HTTPS_PROXY', help: 'a proxy for the store (https_proxy, HTTP_PROXY and http_proxy too), with NO_PROXY; an http:// or https:// URL or exit 2' },
  { name: 'DOCKER_CONFIG', help: 'a folder whose config.json holds the credentials for --scan-result\'s registry, as docker login writes it (the Task mounts secret registry-credentials there)' },
  { name: 'KUBERNETES_SERVICE_HOST', help: 'with KUBERNETES_SERVICE_PORT, the Kubernetes API a pod sees: --scan-result auto and the store\'s progress lines read ImageVulnerabilityScans there' },
  { name: 'POLICY_SERVICE_ACCOUNT_DIR', help: `where the pod's service-account token, ca.crt and namespace are (default ${DEFAULT_SERVICE_ACCOUNT_DIR})` },
  { name: 'NO_COLOR', help: 'no colour in the summary (there is none either when stdout is not a terminal, or TERM=dumb)' },
]

const SEVERITY_RANK: Record<Severity, number> = { unknown: 0, low: 1, medium: 2, high: 3, critical: 4 }
const SEVERITY_NAMES: ReadonlyMap<string, Severity> = new Map([
  ['critical', 'critical'],
  ['high', 'high'],
  ['important', 'high'],
  ['medium', 'medium'],
  ['moderate', 'medium'],
  ['low', 'low'],
])

export interface ImageRef {
  /** What the user passed, without surrounding spaces. */
  readonly reference: string
  /** `sha256:<64 lowercase hex>` */
  readonly digest: string
}


/** Which rule made a finding block: its severity against the gate, --unknown-as, or --fail-on-score. */
/** Why a finding blocks: its severity, --unknown-as, --fail-on-score, or CISA's KEV catalog; warn-at marks a warning only. */
export type Rule = 'severity' | 'unknown-as' | 'score' | 'kev' | 'warn-at'

/** A finding as judged, before any rule made it block. */
export type Judged = Omit<Finding, 'rule' | 'passedUnderScan1'>

export interface Finding {
  readonly id: string
  readonly severity: Severity
  /** The highest positive rating score, or null when no rating has one. */
  readonly score: number | null
  readonly package: string
  readonly version: string
  readonly rule: Rule
  /** What the source knows of a fix for this package. */
  readonly fix: FixState
  /** Known to be exploited: from the --kev catalog (with its dates), or a scanner's KEV rating (without). */
  readonly kev?: KnownExploited
  /** Blocks now, but passed under the Scan 1.0 ScanPolicy given with --scan-policy. */
  readonly passedUnderScan1?: true
}

/** A CISA KEV catalog entry, as far as the outputs show it. */
export interface KnownExploited {
  readonly dateAdded?: string
  readonly dueDate?: string
  readonly ransomware?: string
}

/** A finding that does not block but is reported: at or above --warn-at, or inherited from --baseline. */
export interface Warning extends Finding {
  readonly warnedBy: 'warn-at' | 'baseline'
}

/**
 * A fix, as the scan's source says it for this finding: a fixed version (Trivy's recommendation, Grype's
 * unaffected ranges), evidence that there is none (Trivy wrote no recommendation, Grype lists the pair as
 * affected only), or unknown: the source says nothing about this finding (the Metadata Store, older Grype,
 * other producers). README, "Straight from the scanner", has the rule per producer.
 */
export type FixState = { readonly state: 'fixed'; readonly version: string } | { readonly state: 'not-fixed' } | { readonly state: 'unknown' }

export interface PackageMatch {
  readonly name: string
  readonly version?: string
}

/** One entry of the --exemptions file. */
export interface Exemption {
  readonly id: string
  readonly package?: PackageMatch
  readonly reason: string
  /** As written in the file. */
  readonly expires: string
  /** The last instant it applies: the end of that day (UTC) for a plain date. */
  readonly expiresAt: number
  readonly owner?: string
  /** `kev: accepted`: the entry may suppress a known-exploited finding too. */
  readonly acceptsKev?: true
  /** No expiry (a ScanPolicy's ignored CVE without one): applied, and warned about on every run. */
  readonly permanent?: true
}

/** The current analysis of one triage record of the store. */
export interface TriageDecision {
  readonly id: string
  readonly package?: PackageMatch
  readonly state: string
  readonly justification?: string
}

export type Suppression =
  | { readonly kind: 'exemption'; readonly reason: string; readonly expires: string; readonly owner?: string }
  | { readonly kind: 'triage'; readonly state: string; readonly justification?: string }
  | { readonly kind: 'no-fix' }

export interface SuppressedFinding extends Finding {
  readonly suppressedBy: Suppression
}

/** Everything besides the gate that decides what blocks. */
export interface Policy {
  readonly gate: Gate
  /** Also block on a rating score at or above this. */
  readonly failOnScore?: number
  readonly unknownAs: UnknownAs
  /** Only findings with a fix (or of a source without fix data) can block; the others are listed as not fixed. */
  readonly onlyFixed?: boolean
  readonly exemptions: readonly Exemption[]
  readonly triage: readonly TriageDecision[]
  /** The clock for exemption expiry, ms since the epoch. */
  readonly now: number
  /** Report what does not block from this severity up (none: no warnings). */
  readonly warnAt?: Gate
  /** CISA's KEV catalog by upper-case CVE ID: these block at any severity. */
  readonly kev?: ReadonlyMap<string, KnownExploited>
  /** The running image's findings, (lower-case ID, package) to severity: only new or worse ones block. */
  readonly baseline?: ReadonlyMap<string, Severity>
  /** The Scan 1.0 ScanPolicy this policy came from: blocking findings it passed are marked. */
  readonly scan1?: Pick<ScanPolicyImport, 'template' | 'notAllowed' | 'name'>
}

export interface Evaluation {
  readonly gate: Gate
  /** Unique vulnerability IDs per effective severity: a CVE in two packages counts once. */
  readonly counts: Record<Severity, number>
  readonly uniqueVulnerabilities: number
  /** (package, vulnerability) pairs. */
  readonly findings: number
  /** Findings the policy blocks on, worst first. */
  readonly blocking: readonly Finding[]
  /** Findings that would block but an exemption or the store's triage suppresses, worst first. */
  readonly suppressed: readonly SuppressedFinding[]
  /** Findings that do not block but are reported: at or above --warn-at, or inherited from the baseline. */
  readonly warnings: readonly Warning[]
  /** Unique known-exploited vulnerability IDs among all findings. */
  readonly knownExploited: number
  /** Exemptions that matched a known-exploited finding without `kev: accepted`, so did not apply to it. */
  readonly kevNotAccepted: readonly Exemption[]
  readonly exemptions: {
    /** No longer applied. */
    readonly expired: readonly Exemption[]
    /** Applied, but expiring within EXPIRY_WARNING_DAYS. */
    readonly expiringSoon: readonly Exemption[]
    /** Applied, but matching no finding of this image. */
    readonly stale: readonly Exemption[]
    /** Applied with no expiry (a ScanPolicy's ignored CVE without one). */
    readonly permanent: readonly Exemption[]
  }
  /** Findings whose fix the source does not say (the store, older Grype, other producers): --only-fixed lets them block. */
  readonly fixUnknown: number
  /** Findings that neither block, warn nor are suppressed: the first MAX_REPORTED_FINDINGS, worst first. */
  readonly passing: readonly Judged[]
  /** How many pass in all, listed or not. */
  readonly passingCount: number
  readonly passed: boolean
}

/** Where the store is and how to reach it, as configured; the files it names are read by loadStoreSettings. */
export interface StoreSource {
  readonly baseUrl: URL
  /** The token as given (ACCESS_TOKEN) or the file that holds it. */
  readonly token: { readonly value: string } | { readonly file: string; readonly origin: string }
  /** The CA as PEM (METADATA_STORE_CA_CERT may hold it) or the file that holds it. */
  readonly ca?: { readonly pem: string; readonly origin: string } | { readonly file: string; readonly origin: string }
  readonly pollIntervalMs: number
  /** A proxy variable is set: requests go through EnvHttpProxyAgent. */
  readonly proxied: boolean
}

/** The store, ready to ask: its files read and checked. */
export interface StoreSettings {
  readonly baseUrl: URL
  readonly token: string
  readonly ca?: { readonly pem: string; readonly origin: string }
  /** The run's --timeout: every request of the run shares it. */
  readonly timeoutMs: number
  readonly pollIntervalMs: number
  readonly proxied: boolean
}

export interface Config {
  /** Absent only with --input and no image given: then the document must name the digest it describes. */
  readonly image?: ImageRef
  readonly gate: Gate
  readonly format: Format
  readonly mode: Mode
  readonly failOnScore?: number
  readonly unknownAs: UnknownAs
  /** The exemptions file; it is read (and checked) before any request. */
  readonly exemptionsFile?: string
  readonly triage: boolean
  readonly onlyFixed: boolean
  /** Wait for a scan report generated at or after this instant (ms since the epoch). */
  readonly newerThan?: number
  readonly report?: { readonly path: string; readonly format: ReportFormat }
  /** A larger answer or --input ends with exit 3. */
  readonly maxBodyBytes: number
  /** The whole run, from start to verdict, ends by then: every wait, request and file read. */
  readonly timeoutMs: number
  /** Report non-blocking findings from this severity up as warnings; none: no warnings. */
  readonly warnAt: Gate
  /** CISA's KEV catalog file. */
  readonly kevFile?: string
  /** The Scan 1.0 ScanPolicy the gate, unknown-as and exemptions came from (flags given win). */
  readonly scanPolicy?: ScanPolicyImport
  /** The running image: only findings new in the checked image, or worse, block. */
  readonly baseline?: { readonly image?: ImageRef; readonly input?: string }
  /** A label selector for the ImageVulnerabilityScans listed (--scan-result auto, and the store's progress lines). */
  readonly scanSelector?: string
  /** Tekton results are written here, one file per result. */
  readonly resultsDir?: string
  /** Where the Image document comes from: a saved file, or the store. Absent for gate none. */
  readonly source?: { readonly input: string } | { readonly store: StoreSource } | { readonly scanResult: ScanResultSource }
}

/** The scanner's published results: at a reference, or those of the image's ImageVulnerabilityScan (auto). */
export interface ScanResultSource {
  readonly ref: OciRef | 'auto'
  /** The Docker config with the registry's credentials, and the registry's CA. */
  readonly registryConfig?: { readonly file: string; readonly origin: string }
  readonly registryCa?: { readonly file: string; readonly origin: string }
  readonly pollIntervalMs: number
  readonly proxied: boolean
}

// ---------------------------------------------------------------------------------------------
// Errors: branch on `code`, never on the message.

/** A usage error's code: the JSON report's error.code on exit 2, listed in the README. */
export const USAGE_CODES = [
  'RUNTIME', 'OPTION', 'IMAGE', 'GATE', 'FORMAT', 'MODE', 'REPORT_FORMAT', 'UNKNOWN_AS', 'DURATION', 'SIZE', 'BOOLEAN', 'SCORE',
  'TIME', 'URL', 'PROXY', 'TOKEN', 'CA', 'INSECURE_TLS', 'FILE', 'INPUT', 'EXEMPTIONS', 'REPORT_FILE', 'RESULTS_DIR', 'SCAN_RESULT', 'REGISTRY_CONFIG', 'KUBERNETES', 'WARN_AT', 'KEV', 'BASELINE', 'SCAN_POLICY',
] as const
export type UsageCode = (typeof USAGE_CODES)[number]

/** Bad input or configuration, found before any request: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly exitCode = EXIT.USAGE
  readonly code: UsageCode
  constructor(code: UsageCode, message: string) {
    super(message)
    this.code = code
  }
}

/** Why there is no verdict: the JSON report's error.code, listed in the README. */
export const NO_VERDICT_CODES = [
  'TIMEOUT', 'TOKEN_REJECTED', 'TLS', 'DNS', 'MALFORMED_RESPONSE', 'BODY_TOO_LARGE', 'STORE_ERROR', 'RESULTS_NOT_WRITTEN',
  'REGISTRY_REJECTED', 'REGISTRY_ERROR', 'DIGEST_MISMATCH', 'NO_SCAN_FILE', 'SCAN_FAILED', 'KUBERNETES_ERROR',
] as const
export type NoVerdictCode = (typeof NO_VERDICT_CODES)[number]

/** The gate could not reach a verdict: exit 3. */
export class NoVerdictError extends Error {
  override name = 'NoVerdictError'
  readonly exitCode = EXIT.NO_VERDICT
  readonly code: NoVerdictCode
  constructor(code: NoVerdictCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** SIGINT or SIGTERM arrived: exit 130 or 143. */
export class InterruptedError extends Error {
  override name = 'InterruptedError'
  readonly signal: 'SIGINT' | 'SIGTERM'
  readonly exitCode: number
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`stopped by ${signal}`)
    this.signal = signal
    this.exitCode = signal === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM
  }
}

// ---------------------------------------------------------------------------------------------
// Pure functions: input parsing

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/i
const DOMAIN = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?`
const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
const NAME_RE = new RegExp(String.raw`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\w][\w.-]{0,127})?$`)

/** `[registry[:port]/]repo[:tag]@sha256:<64 hex>` or a bare `sha256:<64 hex>`. */
export function parseImageRef(input: string, what = 'image'): ImageRef {
  const reference = input.trim()
  if (!reference) {
    throw new UsageError('IMAGE', `no ${what} given: pass the image to check as name@sha256:<64 hex> or sha256:<64 hex>`)
  }
  const at = reference.lastIndexOf('@')
  const name = at === -1 ? undefined : reference.slice(0, at)
  const digest = at === -1 ? reference : reference.slice(at + 1)
  if (!DIGEST_RE.test(digest)) {
    throw new UsageError(
      'IMAGE',
      `${what} "${reference}" has no sha256 digest: pass name@sha256:<64 hex> or sha256:<64 hex> (the store keys scans by digest; a tag can move)`,
    )
  }
  if (name !== undefined && !NAME_RE.test(name)) {
    throw new UsageError('IMAGE', `${what} "${reference}" has an invalid name before the @: use [registry[:port]/]repository[:tag]@sha256:<64 hex>`)
  }
  return { reference, digest: digest.toLowerCase() }
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/** `500ms`, `10s`, `5m`, `1h`, `1h30m` or plain seconds, to milliseconds; more than zero. */
export function parseDuration(text: string, option: string): number {
  const value = text.trim()
  let ms: number
  if (/^\d+(?:\.\d+)?$/.test(value)) {
    ms = Number(value) * 1_000
  } else if (/^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(value)) {
    ms = 0
    for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(amount) * DURATION_UNITS_MS[unit!]!
  } else {
    throw new UsageError('DURATION', `${option} "${text}" is not a duration: use 500ms, 10s, 5m, 1h, 1h30m or plain seconds`)
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

function parseChoice<T extends string>(text: string, option: string, choices: readonly T[], what: string, code: UsageCode): T {
  const value = text.trim().toLowerCase()
  if ((choices as readonly string[]).includes(value)) return value as T
  throw new UsageError(code, `${option} "${text}" is not a ${what}: use ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`)
}

export const parseGate = (text: string, option = '--gate') => parseChoice<Gate>(text, option, GATES, 'gate', 'GATE')
export const parseFormat = (text: string, option = '--format') => parseChoice<Format>(text, option, FORMATS, 'format', 'FORMAT')
export const parseMode = (text: string, option = '--mode') => parseChoice<Mode>(text, option, MODES, 'mode', 'MODE')
export const parseReportFormat = (text: string, option = '--report-format') => parseChoice<ReportFormat>(text, option, REPORT_FORMATS, 'report format', 'REPORT_FORMAT')
export const parseUnknownAs = (text: string, option = '--unknown-as') => parseChoice<UnknownAs>(text, option, UNKNOWN_AS, 'severity', 'UNKNOWN_AS')

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }

/** `1048576`, `512KiB`, `10MB`, `256MiB` to bytes; more than zero. */
export function parseSize(text: string, option = '--max-body-size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : 0
  if (!(bytes >= 1)) throw new UsageError('SIZE', `${option} "${text}" is not a size: use bytes, or a number with KiB, MiB, GiB, KB, MB or GB (e.g. 256MiB)`)
  return bytes
}

/** A Kubernetes label selector of equalities and inequalities (key=value, key!=value), comma-separated. */
export function parseLabelSelector(text: string, option = '--scan-selector'): string {
  const term = String.raw`[\w./-]+\s*(?:==?|!=)\s*[\w.-]*`
  if (!new RegExp(`^${term}(?:\\s*,\\s*${term})*$`).test(text.trim())) {
    throw new UsageError('SCAN_RESULT', `${option} "${text}" is not a label selector: use key=value[,key=value] (e.g. carto.run/workload-name=app)`)
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
  if (!/^\d+(?:\.\d+)?$/.test(value) || score > 10) throw new UsageError('SCORE', `${option} "${text}" is not a CVSS score: use a number from 0 to 10, e.g. 9 or 7.5`)
  return score
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/

/** A calendar day that exists: month 1 to 12, day within that month (leap years counted). */
function isRealDate(year: number, month: number, day: number): boolean {
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
  const [year, month, day, hour, minute, second, offsetHours = 0, offsetMinutes = 0] = match.slice(1).map((part) => (part === undefined ? undefined : Number(part))) as number[]
  if (!isRealDate(year!, month!, day!) || hour! > 23 || minute! > 59 || second! > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined
  return Date.parse(text.replace(' ', 'T'))
}

/** An RFC 3339 instant, or a duration before `now` (`2h`: two hours ago), to ms since the epoch. */
export function parseNewerThan(text: string, now: number, option = '--newer-than'): number {
  const value = text.trim()
  if (RFC3339_RE.test(value)) {
    const instant = parseInstant(value)
    if (instant === undefined) throw new UsageError('TIME', `${option} "${value}" is not a real time: check the month (1-12), the day of that month, hour (0-23), minute and second (0-59)`)
    return instant
  }
  try {
    return now - parseDuration(value, option)
  } catch {
    throw new UsageError('TIME', `${option} "${text}" is neither an RFC 3339 time (2026-11-28T09:00:00Z) nor a duration (2h, 30m)`)
  }
}

/** A plain date applies to the end of that day (UTC); a timestamp, to that instant. Undefined when it is no real day or instant. */
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
    throw fail('the file', 'must hold a top-level "exemptions:" list (see README, Exemptions)')
  }
  const known = new Set(['id', 'package', 'reason', 'expires', 'owner', 'kev'])
  return document.exemptions.map((raw: unknown, index: number): Exemption => {
    const label = isObject(raw) && typeof raw.id === 'string' ? `entry ${index + 1} (${raw.id})` : `entry ${index + 1}`
    if (!isObject(raw)) throw fail(label, 'is not a mapping of id, package, reason, expires, owner')
    const unknownKey = Object.keys(raw).find((key) => !known.has(key))
    if (unknownKey) throw fail(label, `"${unknownKey}" is not a field: use id, package, reason, expires, owner, kev`)
    if (raw.kev !== undefined && raw.kev !== 'accepted') throw fail(label, `"kev" may only be "accepted" (the entry then suppresses a known-exploited finding too)`)
    const field = (key: string, example: string): string => {
      const value = raw[key]
      if (value === undefined || value === null || String(value).trim() === '') throw fail(label, `"${key}" is missing: ${example}`)
      if (typeof value !== 'string' && typeof value !== 'number') throw fail(label, `"${key}" must be text`)
      return String(value).trim()
    }
    const id = field('id', 'the CVE or GHSA it exempts, e.g. CVE-2023-0286')
    const reason = field('reason', 'say why the finding is acceptable, e.g. "not reachable: we never parse X.400 addresses"')
    const expires = field('expires', 'the last day it applies, e.g. 2027-01-31')
    const expiresAt = parseExpiry(expires)
    if (expiresAt === undefined) throw fail(label, `"expires" "${expires}" is not a real date: use YYYY-MM-DD or an RFC 3339 time that exists (month 1-12, a day of that month, hour 0-23)`)
    let pkg: PackageMatch | undefined
    if (typeof raw.package === 'string' && raw.package.trim()) pkg = { name: raw.package.trim() }
    else if (isObject(raw.package) && typeof raw.package.name === 'string' && raw.package.name.trim()) {
      // A typo here (versions: for version:) would otherwise widen the exemption to every version.
      const unknownPackageKey = Object.keys(raw.package).find((key) => key !== 'name' && key !== 'version')
      if (unknownPackageKey) throw fail(label, `"package.${unknownPackageKey}" is not a field: package takes name and an optional version`)
      if (raw.package.version !== undefined && raw.package.version !== null && typeof raw.package.version !== 'string' && typeof raw.package.version !== 'number') {
        throw fail(label, '"package.version" must be text')
      }
      const version = raw.package.version === undefined || raw.package.version === null ? undefined : String(raw.package.version).trim()
      pkg = { name: raw.package.name.trim(), ...(version ? { version } : {}) }
    } else if (raw.package !== undefined && raw.package !== null) {
      throw fail(label, '"package" must be a name, or a mapping with name and an optional version')
    }
    const owner = raw.owner === undefined || raw.owner === null ? undefined : String(raw.owner).trim()
    return { id, reason, expires, expiresAt, ...(pkg ? { package: pkg } : {}), ...(owner ? { owner } : {}), ...(raw.kev === 'accepted' ? { acceptsKev: true as const } : {}) }
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
    throw new UsageError('URL', `${option} "${value}" has a malformed scheme: use host[:port][/prefix] or https://host[:port][/prefix]`)
  }
  let url: URL
  try {
    url = new URL(hasScheme ? value : `https://${value}`)
  } catch {
    throw new UsageError('URL', `${option} "${value}" is not a URL: use host[:port][/prefix] or https://host[:port][/prefix]`)
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
    throw new UsageError('TOKEN', `the token from ${origin} has spaces or non-ASCII characters: it must be the bare token, as in secret metadata-store-access-token`)
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(
      'TOKEN',
      `the token from ${origin} has ${token.length} characters, too short to be a real one (a service-account token has hundreds; at least ${MIN_TOKEN_LENGTH} are needed to keep it out of the output safely)`,
    )
  }
  return token
}

const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'] as const

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
      throw new UsageError('PROXY', `${name} is not a proxy URL: use http://host:port (credentials, if any, as http://user:password@host:port)`)
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
 * `--gate high --gate none` was meant must not be a guess.
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
      const hint = flag === '--token' ? ': the token is read from a file (--token-file) or ACCESS_TOKEN, never from a flag' : ': run with --help for the options'
      throw new UsageError('OPTION', `unknown option ${flag}${hint}`)
    }
    let value: string | undefined
    if (!spec.value) {
      if (eq !== -1) throw new UsageError('OPTION', `${flag} takes no value; set ${spec.env ?? 'it'}=false to turn it off`)
      value = 'true'
    } else {
      value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
      if (value === undefined) throw new UsageError('OPTION', `${flag} needs a value (${spec.value})`)
    }
    if (values.has(flag)) throw new UsageError('OPTION', `${flag} is given twice ("${values.get(flag)}", then "${value}"): give it once`)
    values.set(flag, value)
  }
  return { kind: 'run', values, positionals }
}

// ---------------------------------------------------------------------------------------------
// Pure functions: a scanner's CycloneDX

const UNKNOWN_FIX: FixState = { state: 'unknown' }
/** A scanner's KEV rating says a CVE is known exploited, without the catalog's dates. */
const NO_KEV_DATES: KnownExploited = {}
const NOT_FIXED: FixState = { state: 'not-fixed' }
/** Rating methods whose score is a CVSS score; other methods' scores (EPSS, KEV: method "other") are not compared by --fail-on-score. */
const CVSS_METHODS: ReadonlySet<string> = new Set(['CVSSv2', 'CVSSv3', 'CVSSv31', 'CVSSv4'])
/** The CycloneDX versions whose vulnerabilities the gate reads (1.4 introduced them; 1.7 is the newest). */
const CYCLONEDX_VERSION_RE = /^1\.[4-7]$/

/** A CycloneDX BOM (1.4 to 1.7), told by its content. */
export function isCycloneDx(document: unknown): document is Record<string, unknown> {
  return isObject(document) && document.bomFormat === 'CycloneDX' && typeof document.specVersion === 'string' && CYCLONEDX_VERSION_RE.test(document.specVersion)
}

/** A document that says it is CycloneDX in a version the gate does not read: never taken for anything else. */
export function unreadCycloneDxVersion(document: unknown): string | undefined {
  if (!isObject(document) || document.bomFormat !== 'CycloneDX') return undefined
  const version = document.specVersion
  if (typeof version === 'string' && CYCLONEDX_VERSION_RE.test(version)) return undefined
  return typeof version === 'string' ? JSON.stringify(cut(version, 20)) : describeJson(version)
}

/** The CycloneDX files of a scan's published results, judged together: one verdict over all of them. */
export class ScanFiles {
  readonly files: ReadonlyArray<{ readonly name: string; readonly bom: Record<string, unknown> }>
  /** Files of the results that hold no vulnerabilities to judge, each with the reason (an SPDX SBOM, imgpkg's metadata). */
  readonly setAside: readonly SetAside[]
  constructor(files: ScanFiles['files'], setAside: readonly SetAside[] = []) {
    this.files = files
    this.setAside = setAside
  }
}

/** Something from the input that holds no vulnerability to judge, and why it was left out. */
export interface SetAside {
  readonly what: string
  readonly reason: string
}

/**
 * Trivy's free text, "Upgrade X to version 1.2.3, 1.1.9" (since v0.44 several joined with "; "): the fixed
 * versions by package name. Empty when it names none.
 */
export function fixesFromRecommendation(recommendation: unknown): Map<string, string> {
  const fixes = new Map<string, string>()
  if (typeof recommendation !== 'string') return fixes
  for (const part of recommendation.split(/;\s*/)) {
    const match = /^\s*Upgrade (.+?) to version (.+?)\s*$/i.exec(part)
    if (match) fixes.set(match[1]!, match[2]!)
  }
  return fixes
}

/** Who wrote a CycloneDX document, from metadata.tools (1.4's list, or 1.5's {components, services}): each writes fixes its own way. */
export type Producer = 'trivy' | 'grype' | 'other'

export function producerOf(bom: Record<string, unknown>): Producer {
  const tools = isObject(bom.metadata) ? bom.metadata.tools : undefined
  const entries = Array.isArray(tools) ? tools : isObject(tools) ? [...(Array.isArray(tools.components) ? tools.components : []), ...(Array.isArray(tools.services) ? tools.services : [])] : []
  const names = new Set(entries.filter(isObject).map((tool) => textOf(tool.name).toLowerCase()))
  // A document both claim (one tool's output converted by the other) follows neither rule.
  if (names.has('trivy') === names.has('grype')) return 'other'
  return names.has('trivy') ? 'trivy' : 'grype'
}

/** A property's value among a CycloneDX object's `properties`. */
function propertyOf(owner: Record<string, unknown>, name: string): string | undefined {
  if (!Array.isArray(owner.properties)) return undefined
  for (const property of owner.properties) if (isObject(property) && property.name === name && typeof property.value === 'string' && property.value.trim()) return property.value.trim()
  return undefined
}

/**
 * What a finding's own data says of a fix, by its producer's rule (README, "Fix states"). Only evidence about
 * this (component, vulnerability) pair says "not fixed"; anything else is unknown, which --only-fixed never
 * lets through.
 * - Trivy writes a recommendation naming the package when a fix exists (or, in some versions, the
 *   FixedVersion property): without either, not fixed. A recommendation naming only other packages: unknown.
 * - Grype lists the pair's own versions: `unaffected` ranges are the fixes (or, in 0.41-era output, the
 *   grype:fixed_versions property); `affected` with no `unaffected` range is not fixed; no versions, unknown.
 * - Any other producer: unknown (a VEX's `unaffected` ranges are versions not affected, not fixes).
 */
function fixOf(producer: Producer, vulnerability: Record<string, unknown>, recommended: ReadonlyMap<string, string>, affect: Record<string, unknown> | undefined, packageName: string): FixState {
  if (producer === 'trivy') {
    const version = recommended.get(packageName) ?? propertyOf(vulnerability, 'aquasecurity:trivy:FixedVersion')
    if (version) return { state: 'fixed', version }
    return recommended.size || typeof vulnerability.recommendation === 'string' ? UNKNOWN_FIX : NOT_FIXED
  }
  if (producer === 'grype') {
    const versions = affect && Array.isArray(affect.versions) ? affect.versions.filter(isObject) : []
    let ranges = ''
    for (const version of versions) {
      const range = version.status === 'unaffected' ? textOf(version.range) || textOf(version.version) : ''
      if (range) ranges = ranges ? `${ranges}, ${range}` : range
    }
    const fixed = ranges || propertyOf(vulnerability, 'grype:fixed_versions')
    if (fixed) return { state: 'fixed', version: fixed }
    return versions.some((version) => version.status === 'affected') ? NOT_FIXED : UNKNOWN_FIX
  }
  return UNKNOWN_FIX
}

/** Of two accounts of one pair's fix, the one that lets less through: fixed says most, not fixed needs every account to say it. */
function mergeFix(a: FixState, b: FixState): FixState {
  if (a.state === 'fixed') return a
  if (b.state === 'fixed') return b
  return a.state === 'unknown' || b.state === 'unknown' ? UNKNOWN_FIX : NOT_FIXED
}

/**
 * The digest a document names for the image it describes: a store body's Digest, or for a CycloneDX BOM
 * Trivy's RepoDigest property or a component name or version ending in one. Undefined when it names none.
 */
export function digestNamedBy(document: unknown): string | undefined {
  const boms = bomsOf(document)
  if (boms) return boms.map((file) => digestOfBom(file.bom)).find(Boolean)
  const digest = isObject(document) && typeof document.Digest === 'string' ? document.Digest.trim() : ''
  return DIGEST_RE.test(digest) ? digest.toLowerCase() : undefined
}

/** A scanner's CycloneDX, one or the several files of a scan result, by name; undefined for a store body. */
function bomsOf(document: unknown): ScanFiles['files'] | undefined {
  return document instanceof ScanFiles ? document.files : isCycloneDx(document) ? [{ name: SCAN_DOCUMENT, bom: document }] : undefined
}

function subjectComponent(bom: Record<string, unknown>): Record<string, unknown> {
  return isObject(bom.metadata) && isObject(bom.metadata.component) ? bom.metadata.component : {}
}

function digestOfBom(bom: Record<string, unknown>): string | undefined {
  const component = subjectComponent(bom)
  for (const candidate of [propertyOf(component, 'aquasecurity:trivy:RepoDigest'), component.version, component.name]) {
    const digest = typeof candidate === 'string' ? /sha256:[0-9a-f]{64}$/i.exec(candidate.trim())?.[0] : undefined
    if (digest) return digest.toLowerCase()
  }
  return undefined
}

/** What a CycloneDX document is the scan of, in words: metadata.component's name and version (or purl); undefined when it has none. */
export function subjectOf(bom: Record<string, unknown>): string | undefined {
  const component = subjectComponent(bom)
  const name = textOf(component.name) || textOf(component.purl)
  if (!name) return undefined
  const version = textOf(component.version)
  return version && !name.endsWith(version) ? `${name}@${version}` : name
}

/** CVSS base scores of vectors: v2, v3.0, v3.1 and v4.0, from ae-cvss-calculator, loaded with the first CycloneDX document. */
export type CvssScorer = (vector: string) => { readonly score: number; readonly version: 2 | 3 | 4 } | undefined

/** The base metrics every complete vector of a version names, each once: an incomplete vector has no base score. */
const CVSS_BASE_METRICS: Record<2 | 3 | 4, readonly string[]> = {
  2: ['AV', 'AC', 'Au', 'C', 'I', 'A'],
  3: ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'],
  4: ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'],
}

let cvssScorer: Promise<CvssScorer> | undefined

/**
 * The CVSS calculator, loaded once. A well-kept library (FIRST's formulas for four versions, with its own
 * test vectors) rather than hand-written arithmetic; the gate adds only the check that every base metric is
 * named once, since the library scores an incomplete vector as if the missing metrics were the lowest.
 */
export function loadCvssScorer(): Promise<CvssScorer> {
  cvssScorer ??= importCommonJs(import('ae-cvss-calculator')).then(({ fromVector }) => (vector: string) => {
    const text = vector.trim()
    const version = /^CVSS:4\.0\//.test(text) ? 4 : /^CVSS:3\.[01]\//.test(text) ? 3 : /^(?:CVSS:2\.0\/)?AV:[LAN]\/AC:[HML]\/Au:/.test(text) ? 2 : /^AV:[NALP]\/AC:[LH]\/PR:/.test(text) ? 3 : undefined
    if (!version) return undefined
    const named = text.replace(/^CVSS:[\d.]+\//, '').split('/').map((part) => part.split(':', 1)[0]!)
    if (CVSS_BASE_METRICS[version].some((metric) => named.filter((name) => name === metric).length !== 1)) return undefined
    try {
      const score = (fromVector(version === 3 && !text.startsWith('CVSS:') ? `CVSS:3.1/${text}` : text) as { calculateScores(): { base?: unknown } } | null)?.calculateScores().base
      return typeof score === 'number' && Number.isFinite(score) && score >= 0 && score <= 10 ? { score, version } : undefined
    } catch {
      return undefined
    }
  })
  return cvssScorer
}

/** A rating that states a severity: "none" is one; "unknown" (or none at all) leaves its score or vector to say it. */
function statesSeverity(rating: Record<string, unknown>): boolean {
  return typeof rating.severity === 'string' && (normaliseSeverity(rating.severity) !== 'unknown' || !/^\s*unknown\s*$/i.test(rating.severity))
}

/** A CVSS rating (or one of no method) that states neither severity nor score, only a vector: osv-scanner writes these. */
function onlyVector(rating: Record<string, unknown>): boolean {
  const method = rating.method
  return typeof rating.vector === 'string' && rating.vector !== '' && typeof rating.score !== 'number' && (method === undefined || (typeof method === 'string' && CVSS_METHODS.has(method))) && !statesSeverity(rating)
}

/** Whether a document has a rating whose severity only its vector can tell: a cheap look before the calculator is loaded. */
export function needsCvss(document: unknown): boolean {
  for (const { bom } of bomsOf(document) ?? []) {
    const vulnerabilities = Array.isArray(bom.vulnerabilities) ? bom.vulnerabilities : []
    for (let v = 0; v < vulnerabilities.length; v++) {
      const ratings = isObject(vulnerabilities[v]) ? (vulnerabilities[v] as Record<string, unknown>).ratings : undefined
      if (!Array.isArray(ratings)) continue
      for (let r = 0; r < ratings.length; r++) {
        const rating = ratings[r]
        if (isObject(rating) && onlyVector(rating)) return true
      }
    }
  }
  return false
}

/** A CVSS score's qualitative severity: FIRST's scale for v3 and v4, NVD's for v2 (which has no critical); 0 is none, which counts as unknown. */
export function severityOfScore(score: number, version: 2 | 3 | 4): Severity {
  if (score <= 0) return 'unknown'
  if (version === 2) return score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low'
  return score >= 9 ? 'critical' : score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low'
}

/** Whether some (vulnerability ID, affects ref) pair appears twice: a cheap look that builds no key strings and no pairs. */
function namesAPairTwice(vulnerabilities: readonly unknown[]): boolean {
  const refsById = new Map<string, string | Set<string>>()
  for (let v = 0; v < vulnerabilities.length; v++) {
    const vulnerability = vulnerabilities[v]
    if (!isObject(vulnerability)) continue
    const id = textOf(vulnerability.id) || `vulnerabilities[${v}]`
    const affects = Array.isArray(vulnerability.affects) && vulnerability.affects.length ? vulnerability.affects : [undefined]
    for (let a = 0; a < affects.length; a++) {
      const affect = affects[a]
      const ref = isObject(affect) ? textOf(affect.ref) : ''
      const seen = refsById.get(id)
      if (seen === undefined) refsById.set(id, ref)
      else if (seen === ref || (typeof seen !== 'string' && seen.has(ref))) return true
      else if (typeof seen === 'string') refsById.set(id, new Set([seen, ref]))
      else seen.add(ref)
    }
  }
  return false
}

/** One (component, vulnerability) pair while the document is read: statements about the same pair are merged before it is judged. */
interface Pair {
  readonly id: string
  /** The `affects` ref as written; empty for the document's subject. */
  readonly ref: string
  severity: Severity
  score: number | null
  kevRated: boolean
  severities: number
  readonly packageName: string
  readonly packageVersion: string
  fix: FixState
}

/**
 * A scanner's CycloneDX (or a VEX), pair by pair: a finding is a (component, vulnerability) pair through
 * `affects`; a vulnerability without `affects` is about the document's subject (metadata.component).
 * Statements that name the same pair again (VEX files do) are merged: the worst severity and score, and the
 * fix that lets least through. Every rating with a severity counts; a CVSS rating without one takes the
 * severity of its score, or of its vector's base score; EPSS and other ratings without either set nothing.
 * Only CVSS ratings give a score. The fix follows the producer's rule (fixOf).
 */
function readCycloneDx(bom: Record<string, unknown>, judge: JudgeFinding, cvss: CvssScorer | undefined): void {
  const components = new Map<string, { name: string; version: string }>()
  // Components nest (assemblies, a jar in a jar): every level's bom-ref names a package.
  const pending: Array<{ list: readonly unknown[]; path: string }> = [{ list: listAt(SCAN_DOCUMENT, bom, 'components', ''), path: 'components' }]
  for (let next = pending.pop(); next; next = pending.pop()) {
    for (let c = 0; c < next.list.length; c++) {
      const component = next.list[c]
      if (!isObject(component)) throw notAnObject(SCAN_DOCUMENT, component, `${next.path}[${c}]`)
      if (typeof component['bom-ref'] === 'string') components.set(component['bom-ref'], { name: textOf(component.name), version: textOf(component.version) })
      if (component.components !== undefined) pending.push({ list: listAt(SCAN_DOCUMENT, component, 'components', `${next.path}[${c}].`), path: `${next.path}[${c}].components` })
    }
  }
  const subject = subjectComponent(bom)
  const subjectName = textOf(subject.name) || textOf(subject.purl) || '(the scanned subject)'
  const subjectVersion = textOf(subject.version)
  const producer = producerOf(bom)
  const noFixes: ReadonlyMap<string, string> = new Map()
  const vulnerabilities = listAt(SCAN_DOCUMENT, bom, 'vulnerabilities', '')
  // Only a document that names a pair twice (a VEX) pays for merging: pairs by ID, then by ref once an ID names a second ref.
  const merging = namesAPairTwice(vulnerabilities)
  const pairs = new Map<string, Pair | Map<string, Pair>>()
  // The hot loop of a 50 MB scan: plain loops, and error paths (with their strings) built only when something is wrong.
  for (let v = 0; v < vulnerabilities.length; v++) {
    const vulnerability = vulnerabilities[v]
    if (!isObject(vulnerability)) throw notAnObject(SCAN_DOCUMENT, vulnerability, `vulnerabilities[${v}]`)
    const ratings = Array.isArray(vulnerability.ratings) ? vulnerability.ratings : listAt(SCAN_DOCUMENT, vulnerability, 'ratings', `vulnerabilities[${v}].`)
    let severity: Severity = 'unknown'
    let score: number | null = null
    let kevRated = false
    let severities = 0 // every rating's severity, as bits: what Scan 1.0's rules looked at
    for (let r = 0; r < ratings.length; r++) {
      const rating = ratings[r]
      if (!isObject(rating)) throw notAnObject(SCAN_DOCUMENT, rating, `vulnerabilities[${v}].ratings[${r}]`)
      const method = typeof rating.method === 'string' ? rating.method : undefined
      const isCvss = method !== undefined && CVSS_METHODS.has(method)
      // Grype writes CISA's KEV listing as a rating of its own (source "CISA KEV Catalog").
      if (method === 'other' && isObject(rating.source) && typeof rating.source.name === 'string' && /\bKEV\b/i.test(rating.source.name)) kevRated = true
      let ratingSeverity = normaliseSeverity(rating.severity)
      let ratingScore = typeof rating.score === 'number' && rating.score > 0 && isCvss ? rating.score : null
      // No severity stated: a CVSS score says it, or the vector's base score (osv-scanner and others write only one of them).
      if (ratingSeverity === 'unknown' && ratingScore !== null && !statesSeverity(rating)) ratingSeverity = severityOfScore(ratingScore, method === 'CVSSv2' ? 2 : 3)
      else if (ratingSeverity === 'unknown' && onlyVector(rating)) {
        if (!cvss) throw new Error('the CVSS calculator was not loaded for a rating with only a vector: this is a bug')
        const base = cvss(rating.vector as string)
        if (base) {
          ratingSeverity = severityOfScore(base.score, base.version)
          if (base.score > 0) ratingScore = base.score
        }
      }
      if (rating.severity === undefined && ratingSeverity === 'unknown') continue // EPSS and the like: no severity to count
      if (SEVERITY_RANK[ratingSeverity] > SEVERITY_RANK[severity]) severity = ratingSeverity
      severities |= 1 << SEVERITY_RANK[ratingSeverity]
      if (ratingScore !== null && (score === null || ratingScore > score)) score = ratingScore
    }
    const id = textOf(vulnerability.id) || `vulnerabilities[${v}]`
    const recommended = producer === 'trivy' ? fixesFromRecommendation(vulnerability.recommendation) : noFixes
    const affects = Array.isArray(vulnerability.affects) ? vulnerability.affects : listAt(SCAN_DOCUMENT, vulnerability, 'affects', `vulnerabilities[${v}].`)
    // `affects` is optional: without it the vulnerability is about the document's subject.
    for (let a = 0; a < Math.max(affects.length, 1); a++) {
      const affect = affects.length ? affects[a] : undefined
      if (affects.length && !isObject(affect)) throw notAnObject(SCAN_DOCUMENT, affect, `vulnerabilities[${v}].affects[${a}]`)
      const ref = affect ? textOf((affect as Record<string, unknown>).ref) : ''
      const component = ref ? components.get(ref) : undefined
      const packageName = component?.name || ref || subjectName
      const packageVersion = component ? component.version : ref ? '' : subjectVersion
      const fix = fixOf(producer, vulnerability, recommended, affect as Record<string, unknown> | undefined, packageName)
      if (!merging) {
        judge(id, severity, score, packageName, packageVersion, fix, kevRated, severities)
        continue
      }
      const entry = pairs.get(id)
      let seen = entry instanceof Map ? entry.get(ref) : entry
      if (seen && seen.ref !== ref) {
        pairs.set(id, new Map([[seen.ref, seen]]))
        seen = undefined
      }
      if (!seen) {
        const pair: Pair = { id, ref, severity, score, kevRated, severities, packageName, packageVersion, fix }
        const byRef = pairs.get(id)
        if (byRef instanceof Map) byRef.set(ref, pair)
        else pairs.set(id, pair)
        continue
      }
      if (SEVERITY_RANK[severity] > SEVERITY_RANK[seen.severity]) seen.severity = severity
      if (score !== null && (seen.score === null || score > seen.score)) seen.score = score
      seen.kevRated ||= kevRated
      seen.severities |= severities
      seen.fix = mergeFix(seen.fix, fix)
    }
  }
  const judgePair = (pair: Pair) => judge(pair.id, pair.severity, pair.score, pair.packageName, pair.packageVersion, pair.fix, pair.kevRated, pair.severities)
  for (const entry of pairs.values()) {
    if (entry instanceof Map) entry.forEach(judgePair)
    else judgePair(entry)
  }
}

// ---------------------------------------------------------------------------------------------
// Pure functions: a scan's published results in an OCI registry

/** A reference to a registry artifact: the scan results an ImageVulnerabilityScan published. */
export interface OciRef {
  readonly reference: string
  /** host[:port], as in the Docker config's keys. */
  readonly registry: string
  readonly repository: string
  /** The tag or the digest to ask the registry for. */
  readonly tagOrDigest: string
  readonly digest?: string
}

const TAG_RE = /^[\w][\w.-]{0,127}$/
const REPOSITORY_RE = new RegExp(String.raw`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`)
const HOST_RE = new RegExp(String.raw`^${DOMAIN}$`)

/** `host[:port]/repository:tag`, `host[:port]/repository@sha256:<64 hex>` or both; the registry host must be named (a scan result always is). */
export function parseOciRef(text: string, option: string): OciRef {
  const reference = text.trim()
  const fail = (problem: string) => new UsageError('SCAN_RESULT', `${option} "${reference}" ${problem}: use registry.example.com/project/app-scan-results@sha256:<64 hex> (or :tag), as status.scanResult of an ImageVulnerabilityScan shows it`)
  const at = reference.indexOf('@')
  const digest = at === -1 ? undefined : reference.slice(at + 1)
  if (digest !== undefined && !DIGEST_RE.test(digest)) throw fail('has a digest that is not sha256:<64 hex>')
  const named = at === -1 ? reference : reference.slice(0, at)
  const slash = named.indexOf('/')
  const registry = slash === -1 ? '' : named.slice(0, slash)
  if (!registry || !(registry.includes('.') || registry.includes(':') || registry === 'localhost') || !HOST_RE.test(registry)) throw fail('names no registry host')
  const path = named.slice(slash + 1)
  const colon = path.lastIndexOf(':')
  const repository = colon === -1 ? path : path.slice(0, colon)
  const tag = colon === -1 ? undefined : path.slice(colon + 1)
  if (!REPOSITORY_RE.test(repository)) throw fail('has an invalid repository')
  if (tag !== undefined && !TAG_RE.test(tag)) throw fail('has an invalid tag')
  if (tag === undefined && digest === undefined) throw fail('has neither tag nor digest')
  return { reference, registry, repository, tagOrDigest: digest?.toLowerCase() ?? tag!, ...(digest ? { digest: digest.toLowerCase() } : {}) }
}

export interface Credentials {
  readonly username: string
  readonly password: string
}

/** The host a Docker config key names: "host", "https://host/v1/", "host/path". */
function registryHostOf(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/', 1)[0]!.toLowerCase()
}

/**
 * The credentials a Docker config (config.json or a .dockerconfigjson) holds for a registry, from `auths`
 * (`auth` as base64 user:password, or username and password). Credential helpers cannot run in the gate's
 * image: a config that names one for the registry and holds nothing else for it is a usage error.
 */
export function credentialsFor(config: unknown, registry: string, origin: string): Credentials | undefined {
  if (!isObject(config)) throw new UsageError('REGISTRY_CONFIG', `${origin} is not a Docker config: expected {"auths": {"<registry>": {"auth": "<base64 user:password>"}}}`)
  const host = registry.toLowerCase()
  const auths = isObject(config.auths) ? config.auths : {}
  for (const [key, entry] of Object.entries(auths)) {
    if (registryHostOf(key) !== host || !isObject(entry)) continue
    if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username) return { username: entry.username, password: entry.password }
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
      throw new UsageError('REGISTRY_CONFIG', `${origin}: the auth of ${key} is not base64 of user:password`)
    }
    if (typeof entry.identitytoken === 'string') throw new UsageError('REGISTRY_CONFIG', `${origin}: ${key} holds an identity token, which the gate cannot use: give a user and password (or a robot account's token as the password)`)
  }
  const helper = (isObject(config.credHelpers) && typeof config.credHelpers[host] === 'string' ? config.credHelpers[host] : undefined) ?? (typeof config.credsStore === 'string' ? config.credsStore : undefined)
  if (helper && !Object.keys(auths).some((key) => registryHostOf(key) === host)) {
    throw new UsageError('REGISTRY_CONFIG', `${origin} sends ${registry} to the credential helper ${helper}, which the gate cannot run: give a config with the credentials in "auths" (as TAP's registry-credentials secret has)`)
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
  const helpers = typeof config.credsStore === 'string' || (isObject(config.credHelpers) && Object.keys(config.credHelpers).length > 0)
  if (helpers && found.length === 0) {
    throw new UsageError('REGISTRY_CONFIG', `${origin} holds no credentials, only credential helpers, which the gate cannot run: give a config with the credentials in "auths" (as TAP's registry-credentials secret has)`)
  }
}

/** A WWW-Authenticate challenge: its scheme and parameters (realm, service, scope). */
export function parseChallenge(header: string | string[] | undefined): { scheme: string; params: Record<string, string> } | undefined {
  const text = (Array.isArray(header) ? header[0] : header)?.trim()
  const match = text ? /^([A-Za-z]+)\s*(.*)$/s.exec(text) : null
  if (!match) return undefined
  const params: Record<string, string> = {}
  for (const [, key, quoted, bare] of match[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[key!.toLowerCase()] = quoted?.replace(/\\(.)/g, '$1') ?? bare!
  return { scheme: match[1]!.toLowerCase(), params }
}

export const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const
const ACCEPT_MANIFESTS = Object.values(MANIFEST_TYPES).join(', ')

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
export function manifestFrom(document: unknown, contentType: string, what: string): { kind: 'index' | 'manifest'; entries: Descriptor[] } {
  const fail = (detail: string) => new NoVerdictError('MALFORMED_RESPONSE', `${what} is malformed: ${detail}`)
  if (!isObject(document)) throw fail(`it is ${describeJson(document)}, not a manifest`)
  const mediaType = typeof document.mediaType === 'string' ? document.mediaType : contentType.split(';', 1)[0]!.trim()
  const isIndex = mediaType === MANIFEST_TYPES.ociIndex || mediaType === MANIFEST_TYPES.dockerList || (!('layers' in document) && Array.isArray(document.manifests))
  const key = isIndex ? 'manifests' : 'layers'
  if (!Array.isArray(document[key])) throw fail(`${key} is ${describeJson(document[key])}, expected a list`)
  const entries = (document[key] as unknown[]).map((entry, index): Descriptor => {
    if (!isObject(entry) || typeof entry.digest !== 'string' || !DIGEST_RE.test(entry.digest)) throw fail(`${key}[${index}] has no sha256 digest`)
    if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) throw fail(`${key}[${index}].size is ${describeJson(entry.size)}`)
    const annotations = isObject(entry.annotations) ? entry.annotations : {}
    const platform = isObject(entry.platform) ? entry.platform : {}
    const title = typeof annotations['org.opencontainers.image.title'] === 'string' ? annotations['org.opencontainers.image.title'] : undefined
    return {
      digest: entry.digest.toLowerCase(),
      size: entry.size,
      mediaType: typeof entry.mediaType === 'string' ? entry.mediaType : '',
      ...(title ? { title } : {}),
      ...(platform.architecture === 'unknown' ? { title: 'attestation' } : {}),
      ...(typeof platform.os === 'string' && typeof platform.architecture === 'string' ? { platform: cut(escapeControls([platform.os, platform.architecture, platform.variant].filter((part) => typeof part === 'string' && part).join('/')), 40) } : {}),
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
  const text = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '')
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
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '')
    let checksum = 0
    for (let i = 0; i < 512; i++) checksum += i >= 148 && i < 156 ? 32 : header[i]!
    if (Number.parseInt(field(148, 8).trim(), 8) !== checksum) throw new NoVerdictError('MALFORMED_RESPONSE', `${what} is not a tar archive (bad header checksum at byte ${offset})`)
    const size = tarSize(header.subarray(124, 136))
    if (size === undefined) throw new NoVerdictError('MALFORMED_RESPONSE', `${what} is not a tar archive (the size at byte ${offset + 124} is no non-negative number)`)
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
      if (/(?:^|\n)\d+ size=/.test(records)) throw new NoVerdictError('MALFORMED_RESPONSE', `${what} has a PAX size record, which the gate does not read`)
      longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(records)?.[1]
    }
    else if (type === 'L') longName = content.toString('utf8').replace(/\0.*$/s, '')
    else if (type === '0' || type === '\0') files.push({ name: name.replace(/^\.?\/+/, ''), content })
    offset = start + Math.ceil(size / 512) * 512
  }
  return files
}

// ---------------------------------------------------------------------------------------------
// Pure functions: following an ImageVulnerabilityScan (SCST - Scan 2.0)

export const SCAN_API = '/apis/app-scanning.apps.tanzu.vmware.com/v1alpha1'

/** Where the image's newest ImageVulnerabilityScan stands. */
export type ScanState =
  | { readonly kind: 'none' }
  | { readonly kind: 'running'; readonly name: string; readonly detail: string }
  | { readonly kind: 'succeeded'; readonly name: string; readonly result: string; readonly since?: number }
  | { readonly kind: 'failed'; readonly name: string; readonly reason: string; readonly message: string }

/** The digest an image reference ends with, lower-cased; undefined when it has none. */
function digestOfReference(value: unknown): string | undefined {
  return typeof value === 'string' ? /@(sha256:[0-9a-f]{64})$/i.exec(value.trim())?.[1]?.toLowerCase() : undefined
}

/**
 * The newest scan of `digest` in an ImageVulnerabilityScanList (by spec.image or status.scannedImage), and
 * its state from the Succeeded condition: True with status.scanResult, False with the scan's reason, or
 * still running (Unknown, or blank: with a Tekton version Scan 2.0 does not support the conditions stay blank).
 */
export function scanStateOf(list: unknown, digest: string): ScanState {
  const fail = (detail: string) => new NoVerdictError('MALFORMED_RESPONSE', `the ImageVulnerabilityScan list is malformed: ${detail}`)
  if (!isObject(list) || !Array.isArray(list.items)) throw fail('items is not a list')
  let newest: { scan: Record<string, unknown>; name: string; created: string } | undefined
  for (const item of list.items) {
    if (!isObject(item)) throw fail(`an item is ${describeJson(item)}`)
    const spec = isObject(item.spec) ? item.spec : {}
    const status = isObject(item.status) ? item.status : {}
    if (digestOfReference(spec.image) !== digest && digestOfReference(status.scannedImage) !== digest) continue
    const metadata = isObject(item.metadata) ? item.metadata : {}
    const name = textOf(metadata.name) || '(unnamed)'
    const created = textOf(metadata.creationTimestamp)
    if (!newest || created > newest.created || (created === newest.created && name > newest.name)) newest = { scan: item, name, created }
  }
  if (!newest) return { kind: 'none' }
  const { scan, name } = newest
  const status = isObject(scan.status) ? scan.status : {}
  const conditions = Array.isArray(status.conditions) ? status.conditions.filter(isObject) : []
  const succeeded = conditions.find((condition) => condition.type === 'Succeeded')
  const said = (condition: Record<string, unknown>) => [textOf(condition.reason), textOf(condition.message)].filter(Boolean).join(': ')
  if (succeeded?.status === 'False') return { kind: 'failed', name, reason: textOf(succeeded.reason) || 'Failed', message: textOf(succeeded.message) || 'no message' }
  if (succeeded?.status === 'True') {
    const result = textOf(status.scanResult)
    if (!result) return { kind: 'running', name, detail: 'Succeeded, but status.scanResult is empty yet' }
    const since = parseInstant(textOf(succeeded.lastTransitionTime))
    return { kind: 'succeeded', name, result, ...(since === undefined ? {} : { since }) }
  }
  const completed = conditions.find((condition) => condition.type === 'ScanCompleted')
  const latest = succeeded ?? completed
  if (!latest) return { kind: 'running', name, detail: 'no conditions yet (if they stay blank, check that the installed Tekton is one Scan 2.0 supports)' }
  return { kind: 'running', name, detail: `${String(latest.type)} ${String(latest.status)}${said(latest) ? ` (${said(latest)})` : ''}` }
}

/** What a Kubernetes API answer means when listing scans: only 200 is data; 429 and 5xx wait; the rest end the run with what to fix. */
export function classifyKubernetesResponse(response: StoreResponse, namespace: string, now: number): PollOutcome {
  const { status } = response
  if (status === 200) return answered(response.body, 'the Kubernetes API')
  if (status === 429 || status >= 500) return busy(`the Kubernetes API answered ${status}`, response.headers, now)
  const fix =
    status === 401 ? "the pod's service-account token was rejected"
    : status === 403 ? `the Task's service account may not list imagevulnerabilityscans in ${namespace}: provision the namespace with config/developer-namespace/ (Namespace Provisioner), or bind Role amr-policy-gate-scan-reader to the service account`
    : status === 404 ? 'the ImageVulnerabilityScan API (app-scanning.apps.tanzu.vmware.com/v1alpha1) is not installed: SCST - Scan 2.0 is needed for --scan-result auto'
    : 'check the cluster'
  let detail = ''
  try {
    const body = parseJson(response.body) as { message?: unknown }
    if (typeof body.message === 'string') detail = ` (${firstLine(body.message, 160)})`
  } catch {}
  return { kind: 'fail', error: new NoVerdictError('KUBERNETES_ERROR', `the Kubernetes API answered ${status}${detail}: ${fix}`) }
}

// ---------------------------------------------------------------------------------------------
// Pure functions: a way in from Scan 1.0 ScanPolicies

/** What a Scan 1.0 ScanPolicy says, in the gate's terms. */
export interface ScanPolicyImport {
  readonly name: string
  /** Which documented template, by the rule Scan 1.0 judged ratings with (Grype's any-rating rule, Trivy's every-rating rule). */
  readonly template: 'grype' | 'trivy'
  /** TAP's "further refine" variants of the Grype template: ignoreCves as objects with `detail`, or also `expiration`. */
  readonly variant: 'plain' | 'detail' | 'expiration'
  readonly gate: Gate
  readonly unknownAs: UnknownAs
  /** Each ignored CVE, as an exemption: `detail` the reason, `expiration` the expiry (none: permanent). */
  readonly exemptions: readonly Exemption[]
  /** notAllowedSeverities as a mask over SEVERITY_RANK, to tell which findings Scan 1.0 passed. */
  readonly notAllowed: number
  /** Where the gate cannot say exactly what the policy said. */
  readonly notes: readonly string[]
}

/**
 * TAP's documented templates (the two of the scanners, and the two "further refine" variants of the Grype
 * one, scst-scan/policies), each rule normalised (comments out, spacing canonical) and hashed (sha256, hex):
 * recognised exactly or not at all, since the gate never guesses at Rego semantics. The variable lists
 * (notAllowedSeverities, ignoreCves) are read separately, so their contents may differ.
 */
type TemplateRules = ReadonlyArray<readonly [rule: string, sha256: string]>
const SCAN_POLICY_TEMPLATES: ReadonlyArray<Pick<ScanPolicyImport, 'template' | 'variant'> & { readonly rules: TemplateRules }> = [
  { template: 'grype', variant: 'plain', rules: [
    ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
    ['contains(array, elem)', 'acb11bc92e7245410d3bbdd302f6a41aa27ddf89e81e784d7052bd93bdf63905'],
    ['isSafe(match), by severity', '27b041b8100c27c76d7ba56b2f8f154efafd2984eae4505549e189b0051b899b'],
    ['isSafe(match), by ignoreCves', '4111e836e26c319d0f072c85b628a7dd64d21ad9709ac42cbe624618bcf85003'],
    ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
  ] },
  { template: 'trivy', variant: 'plain', rules: [
    ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
    ['import future.keywords.in', '59c829aafbb6b74742fd6525b34d055d1f52343bc65472d047d0a012cc6e6297'],
    ['import future.keywords.every', '006c76372802724784e9c46bede49c07a445d33c7a378f76813466e29c6e599d'],
    ['notAllowedSet', '689c331e178c15031437da285108b4a7e0f68a6ae280d031dc44fcdeb7ce8e5f'],
    ['isSafe(match)', '4ba3d1c9dc0fb69e78a83f7669d01e0b3b51ce55aa79ccaac3533f61a93cb453'],
    ['isIgnored(match)', 'a9701cc6e948f0ac3e8c8f7160d9884ce7c5f260641d0dc6ece01bb0bb17c258'],
    ['deny[msg]', '13131ad835d3f2d1ff355ae570127dae5718934e1e40e35edd2f0eb9a22ecef6'],
  ] },
  { template: 'grype', variant: 'detail', rules: [
    ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
    ['containsSeverity(array, elem)', 'd1288b92d5d64ec2ee42fda03601e4c831f597868de3ca5a9d0311218e373eb4'],
    ['isSafe(match), by severity', '20aff3b56c8acdecc4da848e2676e9b357fdd5ebfef54cac160fc09c32dacefc'],
    ['containsCve(array, elem), by id', '70477d893a3b89813172ad28e4604a84086b69ced97214e0cfec7fee02c151c6'],
    ['isSafe(match), by ignoreCves', '743c5ea0ad6802d8c181e15aa7b5b4cd36d87e0e9e1416b9abb2b0b02a56e80c'],
    ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
  ] },
  { template: 'grype', variant: 'expiration', rules: [
    ['package main', '512843855fcc92a51c810b1b58e0731c01eac9a6a23c157bfa02aad71edffbe7'],
    ['containsSeverity(array, elem)', 'd1288b92d5d64ec2ee42fda03601e4c831f597868de3ca5a9d0311218e373eb4'],
    ['isSafe(match), by severity', '20aff3b56c8acdecc4da848e2676e9b357fdd5ebfef54cac160fc09c32dacefc'],
    ['containsCve(array, elem), by id and expiration', 'b9279f8f3f6375bf3d8d119b05afd9c6b18e92f5203f9ad0e30c53beb2289e29'],
    ['isSafe(match), by ignoreCves', '743c5ea0ad6802d8c181e15aa7b5b4cd36d87e0e9e1416b9abb2b0b02a56e80c'],
    ['deny[msg]', '1e148e2b6a035349a57b9ebc23c16e0eca9bfb486809198325a0ddc762fe21b2'],
  ] },
]

/** How messages name a recognised template. */
const templateTitle = (policy: Pick<ScanPolicyImport, 'template' | 'variant'>) => (policy.variant === 'plain' ? `${policy.template} template` : `grype template refined with ${policy.variant}`)

const GO_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** A date in Go's `2006-Jan-02` layout (the expiration variant's `time.parse_ns`): midnight UTC of that day, ms; undefined when it is none. */
export function parseGoDate(text: string): number | undefined {
  const match = /^(\d{4})-([A-Z][a-z]{2})-(\d{2})$/.exec(text)
  const month = match ? GO_MONTHS.indexOf(match[2]!) + 1 : 0
  if (!match || month === 0 || !isRealDate(Number(match[1]), month, Number(match[3]))) return undefined
  return Date.UTC(Number(match[1]), month - 1, Number(match[3]))
}

/** Rego without comments, and a `[...]` list's end: strings (double-quoted or raw) are skipped whole. */
function scanRego(text: string, from: number, onChar: (index: number) => boolean | void): void {
  for (let i = from; i < text.length; i++) {
    const char = text[i]!
    if (char === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
    } else if (char === '`') {
      i = text.indexOf('`', i + 1)
      if (i === -1) return
    } else if (onChar(i) === false) return
  }
}

function withoutComments(rego: string): string {
  let out = ''
  let copied = 0
  scanRego(rego, 0, (i) => {
    if (rego[i] !== '#') return
    const end = rego.indexOf('\n', i)
    out += rego.slice(copied, i)
    copied = end === -1 ? rego.length : end
  })
  return out + rego.slice(copied)
}

/** The rule text canonical: whitespace collapsed, none next to punctuation, strings as written. */
export function normaliseRego(rule: string): string {
  let out = ''
  let last = 0
  const flush = (end: number) => {
    out += rule.slice(last, end).replace(/\s+/g, ' ')
    last = end
  }
  scanRego(rule, 0, (i) => {
    if (rule[i] === '"' || rule[i] === '`') flush(i)
  })
  flush(rule.length)
  return out.replace(/ ?([{}[\]()|,:=;]) ?/g, '$1').trim()
}

/** `name := [...]` taken out of the Rego: the list's text (undefined when absent) and the Rego without it. */
function takeList(rego: string, name: string, fail: (problem: string) => UsageError): { list?: string; rest: string } {
  const start = new RegExp(`^[ \\t]*${name}[ \\t]*:?=[ \\t]*\\[`, 'm').exec(rego)
  if (!start) return { rest: rego }
  const open = start.index + start[0].length - 1
  let depth = 0
  let end = -1
  scanRego(rego, open, (i) => {
    if (rego[i] === '[' || rego[i] === '{') depth++
    else if (rego[i] === ']' || rego[i] === '}') depth--
    if (depth === 0) {
      end = i
      return false
    }
  })
  if (end === -1) throw fail(`${name} has no closing ]`)
  return { list: rego.slice(open, end + 1), rest: rego.slice(0, start.index) + rego.slice(end + 1) }
}

/** A Rego list of strings or objects as JSON (Rego's literals are JSON's, with trailing commas allowed). */
function regoList(text: string, name: string, fail: (problem: string) => UsageError): unknown[] {
  try {
    const value = JSON.parse(text.replace(/,(\s*[\]}])/g, '$1'))
    if (Array.isArray(value)) return value
  } catch {}
  throw fail(`${name} is not a list of plain values: ${cut(normaliseRego(text), 80)}`)
}

/** Top-level statements: each starts at a line's first column (a block scalar's indentation is gone by then). */
function regoStatements(rego: string): string[] {
  const statements: string[] = []
  for (const line of rego.split('\n')) {
    if (!line.trim()) continue
    if (/^[^\s}]/.test(line) && !/^else\b/.test(line)) statements.push(line)
    else if (statements.length) statements[statements.length - 1] += `\n${line}`
    else statements.push(line)
  }
  return statements
}

const SCAN_POLICY_SEVERITIES: ReadonlyMap<string, Severity | 'negligible'> = new Map([
  ['critical', 'critical'],
  ['high', 'high'],
  ['medium', 'medium'],
  ['low', 'low'],
  ['negligible', 'negligible'],
  ['unknownseverity', 'unknown'],
  ['unknown', 'unknown'],
])

/**
 * The ScanPolicy among YAML documents, recognised as one of TAP's two templates, and what it says in the
 * gate's terms: the gate is the lowest listed of low to critical, UnknownSeverity makes unknown count as the
 * gate, each ignored CVE an exemption. Rego that is not the template is refused, naming the rules not
 * understood. `hash` is sha256 in hex (node:crypto, passed in so that this stays pure).
 */
export function scanPolicyFrom(documents: readonly unknown[], origin: string, hash: (text: string) => string): ScanPolicyImport {
  const fail = (problem: string) => new UsageError('SCAN_POLICY', `${origin}: ${problem}`)
  const policies = documents.filter((document) => isObject(document) && document.kind === 'ScanPolicy')
  if (policies.length !== 1) throw fail(policies.length ? `holds ${policies.length} ScanPolicies: give the file of the one your image scans used` : 'holds no ScanPolicy (kind: ScanPolicy, apiVersion scanning.apps.tanzu.vmware.com/v1beta1)')
  const policy = policies[0] as Record<string, unknown>
  const name = isObject(policy.metadata) ? textOf(policy.metadata.name) || '(unnamed)' : '(unnamed)'
  const rego = isObject(policy.spec) && typeof policy.spec.regoFile === 'string' ? policy.spec.regoFile : undefined
  if (!rego) throw fail(`ScanPolicy ${name} has no spec.regoFile`)
  const severitiesTaken = takeList(withoutComments(rego), 'notAllowedSeverities', fail)
  const ignoresTaken = takeList(severitiesTaken.rest, 'ignoreCves', fail)
  if (severitiesTaken.list === undefined) throw fail(`ScanPolicy ${name}: no notAllowedSeverities list, so it is not one of TAP's templates`)
  const statements = regoStatements(ignoresTaken.rest).map((statement) => ({ head: cut(statement.split('\n', 1)[0]!.trim(), 60), hash: hash(normaliseRego(statement)) }))
  const matching = (rules: TemplateRules) => statements.filter((statement) => rules.some(([, sha]) => sha === statement.hash)).length
  const found = SCAN_POLICY_TEMPLATES.find(({ rules }) => statements.length === rules.length && matching(rules) === rules.length)
  if (!found) {
    const closest = [...SCAN_POLICY_TEMPLATES].sort((a, b) => matching(b.rules) - matching(a.rules))[0]!
    const { rules } = closest
    const unknown = statements.filter((statement) => !rules.some(([, sha]) => sha === statement.hash)).map((statement) => statement.head)
    const missing = rules.filter(([, sha]) => !statements.some((statement) => statement.hash === sha)).map(([rule]) => rule)
    throw fail(
      `the Rego of ScanPolicy ${name} is not TAP's ${templateTitle(closest)}, so the gate will not guess what it means: ` +
        [unknown.length ? `not understood: ${unknown.join('; ')}` : '', missing.length ? `missing or changed: ${missing.join('; ')}` : ''].filter(Boolean).join('; ') +
        '. Translate it by hand into --gate and --exemptions (README, From Scan 1.0)',
    )
  }
  const { template, variant } = found
  const title = templateTitle(found)
  let notAllowed = 0
  const listed = new Set<Severity | 'negligible'>()
  for (const entry of regoList(severitiesTaken.list, 'notAllowedSeverities', fail)) {
    const severity = typeof entry === 'string' ? SCAN_POLICY_SEVERITIES.get(entry.trim().toLowerCase()) : undefined
    if (!severity) throw fail(`notAllowedSeverities holds ${JSON.stringify(entry)}, which is none of Critical, High, Medium, Low, Negligible, UnknownSeverity`)
    listed.add(severity)
    if (severity !== 'negligible') notAllowed |= 1 << SEVERITY_RANK[severity]
  }
  const notes: string[] = []
  const standard = (['low', 'medium', 'high', 'critical'] as const).filter((severity) => listed.has(severity))
  let gate: Gate = standard[0] ?? 'none'
  if (listed.has('negligible')) {
    gate = 'low'
    notes.push('Negligible is below low, which is the lowest gate: low')
  }
  const fromGate = GATES.filter((level) => level !== 'none' && gate !== 'none' && SEVERITY_RANK[level] >= SEVERITY_RANK[gate])
  const gaps = fromGate.filter((level) => !listed.has(level as Severity))
  if (gaps.length) notes.push(`the gate blocks everything from ${gate} up, so ${gaps.join(' and ')} findings block too, which the policy did not list`)
  if (gate === 'none' && listed.has('unknown')) notes.push('UnknownSeverity alone sets no gate: gate none')
  const unknownAs: UnknownAs = listed.has('unknown') && gate !== 'none' ? gate : 'ignore'
  // The list is read as each template's Rego reads it. The plain templates compare whole entries with the ID
  // (`contains(ignoreCves, match.id)`, `match.id in ignoreCves`): only strings ever ignored a CVE. The refined
  // variants compare `array[_].id`: only objects did, and the expiration variant only until its date.
  const exemptions: Exemption[] = []
  const owner = `ScanPolicy ${name}`
  for (const [index, entry] of (ignoresTaken.list === undefined ? [] : regoList(ignoresTaken.list, 'ignoreCves', fail)).entries()) {
    const id = typeof entry === 'string' ? entry.trim() : isObject(entry) && typeof entry.id === 'string' ? entry.id.trim() : ''
    if (!id) throw fail(`ignoreCves[${index}] is neither a CVE ID nor an object with an id`)
    const never = (why: string) => notes.push(`ignoreCves[${index}] (${cut(id, 40)}) ${why}, so Scan 1.0 never ignored it: the gate does not either (give it in --exemptions with a reason and an expiry)`)
    if (variant === 'plain') {
      if (typeof entry === 'string') exemptions.push({ id, reason: `ignored in ${owner}`, expires: 'never', expiresAt: Number.POSITIVE_INFINITY, owner, permanent: true })
      else never(`is an object, which TAP's ${title} compares whole with the CVE ID`)
      continue
    }
    if (!isObject(entry)) {
      never(`is a string, which TAP's ${title} compares by its .id`)
      continue
    }
    const reason = textOf(entry.detail) || `ignored in ${owner}`
    if (variant === 'detail') {
      exemptions.push({ id, reason, expires: 'never', expiresAt: Number.POSITIVE_INFINITY, owner, permanent: true })
      continue
    }
    const expiration = textOf(entry.expiration)
    const expiresAt = parseGoDate(expiration)
    // time.parse_ns gives midnight UTC of the day, and the Rego ignores only while now is before it.
    if (expiresAt === undefined) notes.push(`ignoreCves[${index}] (${cut(id, 40)}) has no expiration in the 2006-Jan-02 layout (e.g. 2030-Dec-31): the gate does not apply it (give it one, or use --exemptions)`)
    else exemptions.push({ id, reason, expires: expiration, expiresAt: expiresAt - 1, owner })
  }
  if (variant === 'expiration' && exemptions.length) {
    notes.push(
      "this template's containsCve checks that some entry of ignoreCves has not expired, not the matching entry: Scan 1.0 went on ignoring a CVE whose own entry had expired while any other entry had not. The gate applies each entry's own expiration, the reading the template's text intends, so an expired entry may block now",
    )
  }
  return { name, template, variant, gate, unknownAs, exemptions, notAllowed, notes }
}

/** How far ahead --print-exemptions dates an ignored CVE the ScanPolicy gave no expiration. */
const REVIEW_DAYS = 90

/** --print-exemptions: the ScanPolicy as an --exemptions file, with the gate to use in a comment. */
export function renderScanPolicyExemptions(scanPolicy: ScanPolicyImport, now: number): string {
  const review = new Date(now + REVIEW_DAYS * 86_400_000).toISOString().slice(0, 10)
  const quote = (value: string) => toJson(value).trimEnd()
  const lines = [
    `# From ScanPolicy ${escapeControls(scanPolicy.name)} (TAP's ${templateTitle(scanPolicy)}), for --exemptions.`,
    `# Its gate: --gate ${scanPolicy.gate}${scanPolicy.unknownAs === 'ignore' ? '' : ` --unknown-as ${scanPolicy.unknownAs}`} (GATE=${scanPolicy.gate}${scanPolicy.unknownAs === 'ignore' ? '' : `, POLICY_UNKNOWN_AS=${scanPolicy.unknownAs}`}).`,
    ...scanPolicy.notes.map((note) => `# Note: ${escapeControls(note)}.`),
    'exemptions:',
  ]
  for (const exemption of scanPolicy.exemptions) {
    lines.push(`  - id: ${quote(exemption.id)}`, `    reason: ${quote(exemption.reason)}`)
    if (exemption.permanent) lines.push(`    expires: ${quote(review)}  # no expiration in the ScanPolicy: ${REVIEW_DAYS} days from today, review it by then`)
    // An expiration variant's 2030-Dec-31 ends at that day's start: written as the instant, which --exemptions reads back.
    else lines.push(`    expires: ${quote(parseExpiry(exemption.expires) === exemption.expiresAt ? exemption.expires : new Date(exemption.expiresAt).toISOString())}`)
    lines.push(`    owner: ${quote(exemption.owner ?? `ScanPolicy ${scanPolicy.name}`)}`)
  }
  if (scanPolicy.exemptions.length === 0) lines[lines.length - 1] = 'exemptions: []'
  return `${lines.join('\n')}\n`
}

/** Whether Scan 1.0 passed a finding with ratings of these severities (a mask over SEVERITY_RANK). */
export function passedUnderScan1(severities: number, policy: Pick<ScanPolicyImport, 'template' | 'notAllowed'>): boolean {
  // Grype's template: safe when any one rating is outside the list. Trivy's: only when every one is.
  return policy.template === 'grype' ? (severities & ~policy.notAllowed) !== 0 : (severities & policy.notAllowed) === 0
}

// ---------------------------------------------------------------------------------------------
// Pure functions: evaluation

/** The store's and CycloneDX's own spellings, looked up before any trimming or lower-casing (the hot path of evaluate). */
const STORE_SEVERITIES: ReadonlyMap<string, Severity> = new Map([
  ['Critical', 'critical'],
  ['High', 'high'],
  ['Medium', 'medium'],
  ['Low', 'low'],
  ['critical', 'critical'],
  ['high', 'high'],
  ['medium', 'medium'],
  ['low', 'low'],
])

export function normaliseSeverity(raw: unknown): Severity {
  if (typeof raw !== 'string') return 'unknown'
  return STORE_SEVERITIES.get(raw) ?? SEVERITY_NAMES.get(raw.trim().toLowerCase()) ?? 'unknown'
}

export function isAtOrAbove(severity: Severity, gate: Gate): boolean {
  return gate !== 'none' && severity !== 'unknown' && SEVERITY_RANK[severity] >= SEVERITY_RANK[gate]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const NO_ITEMS: readonly unknown[] = []

/** `null` or missing means none; anything else that is not a list is malformed. */
function listAt(document: DocumentName, owner: Record<string, unknown>, key: string, path: string): readonly unknown[] {
  const value = owner[key]
  if (value === null || value === undefined) return NO_ITEMS
  if (!Array.isArray(value)) throw malformed(document, `${path}${key} is ${describeJson(value)}, expected a list`)
  return value
}

function objectAt(document: DocumentName, value: unknown, path: string): Record<string, unknown> {
  if (!isObject(value)) throw notAnObject(document, value, path)
  return value
}

function notAnObject(document: DocumentName, value: unknown, path: string): NoVerdictError {
  return malformed(document, `${path} is ${describeJson(value)}, expected an object`)
}

function describeJson(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** The documents the gate reads (the store's answers, a scanner's CycloneDX), as messages name them. */
type DocumentName = 'the image report' | 'the triage page' | 'the reports page' | 'the CycloneDX document'
const IMAGE_REPORT: DocumentName = 'the image report'
const TRIAGE_PAGE: DocumentName = 'the triage page'
const REPORTS_PAGE: DocumentName = 'the reports page'
const SCAN_DOCUMENT: DocumentName = 'the CycloneDX document'

function malformed(document: DocumentName, detail: string): NoVerdictError {
  return new NoVerdictError('MALFORMED_RESPONSE', `${document} is malformed: ${detail}`)
}

/** A string or number field as trimmed text; anything else is empty. */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : ''
}

export function basePolicy(gate: Gate, now = Date.now()): Policy {
  return { gate, unknownAs: 'ignore', exemptions: [], triage: [], now }
}

/** Which rule, if any, makes a finding of this severity and score block. */
export function blockingRule(severity: Severity, score: number | null, policy: Policy): Rule | undefined {
  if (isAtOrAbove(severity, policy.gate)) return 'severity'
  if (severity === 'unknown' && policy.unknownAs !== 'ignore' && isAtOrAbove(policy.unknownAs, policy.gate)) return 'unknown-as'
  if (policy.failOnScore !== undefined && score !== null && score >= policy.failOnScore) return 'score'
  return undefined
}

function byLowerCaseId<T extends { readonly id: string }>(entries: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>()
  for (const entry of entries) {
    const key = entry.id.toLowerCase()
    map.get(key)?.push(entry) ?? map.set(key, [entry])
  }
  return map
}

function findMatch<T extends { readonly package?: PackageMatch }>(byId: Map<string, T[]>, id: string, name: string, version: string): T | undefined {
  return byId.get(id.toLowerCase())?.find((entry) => !entry.package || (entry.package.name === name && (!entry.package.version || entry.package.version === version)))
}

/**
 * The verdict on one Image document (`GET /api/v1/images/{digest}`). A vulnerability's severity is the
 * highest of its ratings; a finding blocks when that is at or above the gate (or --unknown-as or
 * --fail-on-score say so), unless an exemption or the store's triage suppresses it. Throws
 * NoVerdictError('MALFORMED_RESPONSE') when the document is not an Image of the expected shape.
 */
export function evaluate(document: unknown, policyOrGate: Policy | Gate, expectedDigest?: string, cvss?: CvssScorer): Evaluation {
  const policy = typeof policyOrGate === 'string' ? basePolicy(policyOrGate) : policyOrGate
  const unread = unreadCycloneDxVersion(document)
  if (unread) throw malformed(SCAN_DOCUMENT, `its specVersion is ${unread}: the gate reads CycloneDX 1.4 to 1.7, so it cannot account for its vulnerabilities`)
  const boms = bomsOf(document)
  if (boms) {
    const judge = createJudge(policy)
    for (const { name, bom } of boms) {
      const named = digestOfBom(bom)
      if (expectedDigest && named && named !== expectedDigest) throw digestMismatch(name === SCAN_DOCUMENT ? 'it' : name, named, expectedDigest)
      readCycloneDx(bom, judge.judge, cvss)
    }
    return judge.evaluation()
  }
  const image = objectAt(IMAGE_REPORT, document, 'the document')
  if (typeof image.Digest !== 'string' && !('Packages' in image)) {
    throw malformed(IMAGE_REPORT, 'it has neither Digest nor Packages, so it is not an Image')
  }
  if (expectedDigest) {
    // Fetched for a digest: the body must say which image it describes, or the check would be skipped silently.
    if (image.Digest === undefined || image.Digest === null) throw malformed(IMAGE_REPORT, `Digest is missing, so it cannot be checked against ${expectedDigest}`)
    if (typeof image.Digest !== 'string') throw malformed(IMAGE_REPORT, `Digest is ${describeJson(image.Digest)}, expected the image's digest (${expectedDigest})`)
    if (image.Digest.trim().toLowerCase() !== expectedDigest) throw digestMismatch(IMAGE_REPORT, image.Digest.trim(), expectedDigest)
  }
  const judge = createJudge(policy)
  readStoreImage(image, judge.judge)
  return judge.evaluation()
}

/** A document about another image than the one judged: not malformed, but the wrong scan. */
function digestMismatch(document: string, named: string, expected: string): NoVerdictError {
  return new NoVerdictError('DIGEST_MISMATCH', `${document} describes ${cut(escapeControls(named), 80)}, not ${expected}: it is the scan of another image (the digests differ)`)
}

/** CISA's Known Exploited Vulnerabilities catalog, as published: the entries by upper-case CVE ID, and when it was released. */
export interface KevCatalog {
  readonly entries: ReadonlyMap<string, KnownExploited>
  readonly version: string
  /** dateReleased, ms since the epoch. */
  readonly released: number
}

/** A catalog older than this is warned about: CISA adds entries every few days. */
export const KEV_MAX_AGE_DAYS = 30

/** The catalog's JSON (`{catalogVersion, dateReleased, vulnerabilities: [{cveID, dateAdded, dueDate, knownRansomwareCampaignUse}]}`), checked. */
export function kevCatalogFrom(document: unknown, origin: string): KevCatalog {
  const fail = (problem: string) => new UsageError('KEV', `${origin} is not CISA's KEV catalog: ${problem} (download known_exploited_vulnerabilities.json from cisa.gov)`)
  if (!isObject(document) || !Array.isArray(document.vulnerabilities)) throw fail('it has no "vulnerabilities" list')
  const released = parseInstant(textOf(document.dateReleased)) ?? parseExpiry(textOf(document.dateReleased).slice(0, 10))
  if (released === undefined) throw fail(`"dateReleased" ${JSON.stringify(cut(textOf(document.dateReleased), 40))} is not a date`)
  const entries = new Map<string, KnownExploited>()
  document.vulnerabilities.forEach((entry: unknown, index: number) => {
    if (!isObject(entry) || typeof entry.cveID !== 'string' || !/^CVE-\d{4}-\d{4,}$/i.test(entry.cveID.trim())) throw fail(`vulnerabilities[${index}] has no cveID of the form CVE-YYYY-NNNN`)
    const date = (key: string) => (typeof entry[key] === 'string' && DATE_RE.test(entry[key] as string) ? { [key]: entry[key] as string } : {})
    const ransomware = typeof entry.knownRansomwareCampaignUse === 'string' && entry.knownRansomwareCampaignUse ? { ransomware: entry.knownRansomwareCampaignUse } : {}
    entries.set(entry.cveID.trim().toUpperCase(), { ...date('dateAdded'), ...date('dueDate'), ...ransomware })
  })
  return { entries, version: textOf(document.catalogVersion) || 'unversioned', released }
}

/** "known exploited since 2021-12-10 (due 2021-12-24)", or "known exploited (a scanner's KEV rating)" without the catalog's dates. */
export function describeKev(kev: KnownExploited): string {
  if (!kev.dateAdded) return 'known exploited (a scanner\'s KEV rating)'
  return `known exploited since ${kev.dateAdded}${kev.dueDate ? ` (due ${kev.dueDate})` : ''}${kev.ransomware === 'Known' ? ', used by ransomware' : ''}`
}

/** The running image's findings for --baseline: (lower-case ID, package name) to the worst severity seen. */
export function baselineFrom(document: unknown, cvss?: CvssScorer): Map<string, Severity> {
  const baseline = new Map<string, Severity>()
  const record: JudgeFinding = (id, severity, _score, packageName) => {
    const key = `${id.toLowerCase()}\u0000${packageName}`
    const seen = baseline.get(key)
    if (seen === undefined || SEVERITY_RANK[severity] > SEVERITY_RANK[seen]) baseline.set(key, severity)
  }
  const boms = bomsOf(document)
  if (boms) for (const { bom } of boms) readCycloneDx(bom, record, cvss)
  else readStoreImage(objectAt(IMAGE_REPORT, document, 'the document'), record)
  return baseline
}

/** One finding, as a reader found it: the vulnerability, its severity and best score, the package, the fix. */
type JudgeFinding = (id: string, severity: Severity, score: number | null, packageName: string, packageVersion: string, fix: FixState, kevRated: boolean, severities: number) => void

/**
 * The rules, applied one finding at a time by whichever reader walks the document (the store's Image, a
 * scanner's CycloneDX), and summed up at the end: counts per unique ID at its worst, what blocks, what an
 * exemption, the store's triage or --only-fixed suppresses, and the exemptions to review.
 */
function createJudge(policy: Policy) {
  const active = policy.exemptions.filter((exemption) => exemption.expiresAt >= policy.now)
  const exemptionsById = byLowerCaseId(active)
  const triageById = byLowerCaseId(policy.triage.filter((decision) => SUPPRESSING_TRIAGE_STATES.has(decision.state)))
  const matchedExemptions = new Set<Exemption>()
  const kevNotAccepted = new Set<Exemption>()
  const worstById = new Map<string, Severity>()
  const kevIds = new Set<string>()
  const blocking: Finding[] = []
  const suppressed: SuppressedFinding[] = []
  const warnings: Warning[] = []
  const passing: Judged[] = []
  const warnAt = policy.warnAt && policy.warnAt !== 'none' ? policy.warnAt : undefined
  let findings = 0
  let passingCount = 0
  let fixUnknown = 0
  const judge: JudgeFinding = (id, severity, score, packageName, packageVersion, fix, kevRated, severities) => {
    const seen = worstById.get(id)
    if (seen === undefined || SEVERITY_RANK[severity] > SEVERITY_RANK[seen]) worstById.set(id, severity)
    findings++
    if (fix.state === 'unknown') fixUnknown++
    const exemption = exemptionsById.size ? findMatch(exemptionsById, id, packageName, packageVersion) : undefined
    if (exemption) matchedExemptions.add(exemption)
    const kev = policy.kev?.get(id.toUpperCase()) ?? (kevRated ? NO_KEV_DATES : undefined)
    if (kev) kevIds.add(id)
    const rule = blockingRule(severity, score, policy) ?? (kev ? 'kev' : undefined)
    if (!rule) {
      if (warnAt && isAtOrAbove(severity, warnAt)) warnings.push({ id, severity, score, package: packageName, version: packageVersion, rule: 'warn-at', fix, warnedBy: 'warn-at' })
      // Every finding is accounted for in the report: what passes is listed too (the first ones, in the document's order).
      else if (passingCount++ < MAX_REPORTED_FINDINGS) passing.push(kev ? { id, severity, score, package: packageName, version: packageVersion, fix, kev } : { id, severity, score, package: packageName, version: packageVersion, fix })
      return
    }
    // Two literal shapes, no spread: this runs for each of tens of thousands of blocking findings.
    const finding: Finding = kev ? { id, severity, score, package: packageName, version: packageVersion, rule, fix, kev } : { id, severity, score, package: packageName, version: packageVersion, rule, fix }
    // A known-exploited finding yields only to an exemption that says `kev: accepted`: not to triage, not to --only-fixed.
    const exempted = exemption && (!kev || exemption.acceptsKev) ? exemption : undefined
    if (exemption && !exempted) kevNotAccepted.add(exemption)
    const triage = exempted || kev || !triageById.size ? undefined : findMatch(triageById, id, packageName, packageVersion)
    const inherited = policy.baseline?.get(`${id.toLowerCase()}\u0000${packageName}`)
    if (exempted) {
      suppressed.push({ ...finding, suppressedBy: { kind: 'exemption', reason: exempted.reason, expires: exempted.expires, ...(exempted.owner ? { owner: exempted.owner } : {}) } })
    } else if (triage) {
      suppressed.push({ ...finding, suppressedBy: { kind: 'triage', state: triage.state, ...(triage.justification ? { justification: triage.justification } : {}) } })
    } else if (inherited !== undefined && SEVERITY_RANK[severity] <= SEVERITY_RANK[inherited]) {
      warnings.push({ ...finding, warnedBy: 'baseline' })
    } else if (policy.onlyFixed && fix.state === 'not-fixed' && !kev) {
      suppressed.push({ ...finding, suppressedBy: { kind: 'no-fix' } })
    } else {
      blocking.push(policy.scan1 && passedUnderScan1(severities, policy.scan1) ? { ...finding, passedUnderScan1: true } : finding)
    }
  }
  const evaluation = (): Evaluation => {
    const counts: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0 }
    for (const severity of worstById.values()) counts[severity]++
    worstFirst(blocking)
    worstFirst(suppressed)
    worstFirst(warnings)
    passing.sort(compareFindings)
    // "Within EXPIRY_WARNING_DAYS" counts whole days: an entry expiring on the last of them is warned about.
    const warnBefore = parseExpiry(new Date(policy.now + EXPIRY_WARNING_DAYS * 86_400_000).toISOString().slice(0, 10))!
    return {
      gate: policy.gate,
      counts,
      uniqueVulnerabilities: worstById.size,
      findings,
      blocking,
      suppressed,
      warnings,
      knownExploited: kevIds.size,
      kevNotAccepted: [...kevNotAccepted],
      exemptions: {
        expired: policy.exemptions.filter((exemption) => exemption.expiresAt < policy.now),
        expiringSoon: active.filter((exemption) => exemption.expiresAt <= warnBefore),
        stale: active.filter((exemption) => !matchedExemptions.has(exemption)),
        permanent: active.filter((exemption) => exemption.permanent),
      },
      fixUnknown,
      passing,
      passingCount,
      passed: blocking.length === 0,
    }
  }
  return { judge, evaluation }
}

/** The store's Image document, finding by finding: the hot loop of a 50 MB report, in plain loops, with error paths built only when something is wrong. */
function readStoreImage(image: Record<string, unknown>, judge: JudgeFinding): void {
  const packages = listAt(IMAGE_REPORT, image, 'Packages', '')
  for (let p = 0; p < packages.length; p++) {
    const pkg = packages[p]
    if (!isObject(pkg)) throw notAnObject(IMAGE_REPORT, pkg, `Packages[${p}]`)
    const vulnerabilities = Array.isArray(pkg.Vulnerabilities) ? pkg.Vulnerabilities : listAt(IMAGE_REPORT, pkg, 'Vulnerabilities', `Packages[${p}].`)
    if (vulnerabilities.length === 0) continue
    const packageName = textOf(pkg.Name) || '(unnamed package)'
    const packageVersion = textOf(pkg.Version)
    for (let v = 0; v < vulnerabilities.length; v++) {
      const vulnerability = vulnerabilities[v]
      if (!isObject(vulnerability)) throw notAnObject(IMAGE_REPORT, vulnerability, `Packages[${p}].Vulnerabilities[${v}]`)
      const ratings = Array.isArray(vulnerability.Ratings) ? vulnerability.Ratings : listAt(IMAGE_REPORT, vulnerability, 'Ratings', `Packages[${p}].Vulnerabilities[${v}].`)
      let severity: Severity = 'unknown'
      let score: number | null = null
      let severities = 0 // every rating's severity, as bits: what Scan 1.0's rules looked at
      for (let r = 0; r < ratings.length; r++) {
        const rating = ratings[r]
        if (!isObject(rating)) throw notAnObject(IMAGE_REPORT, rating, `Packages[${p}].Vulnerabilities[${v}].Ratings[${r}]`)
        const ratingSeverity = normaliseSeverity(rating.Severity)
        if (SEVERITY_RANK[ratingSeverity] > SEVERITY_RANK[severity]) severity = ratingSeverity
        severities |= 1 << SEVERITY_RANK[ratingSeverity]
        const ratingScore = rating.Score
        if (typeof ratingScore === 'number' && ratingScore > 0 && (score === null || ratingScore > score) && isStoreCvssRating(rating)) score = ratingScore
      }
      const id = textOf(vulnerability.CVEID) || (textOf(vulnerability.ID) ? `store-id:${textOf(vulnerability.ID)}` : `Packages[${p}].Vulnerabilities[${v}]`)
      judge(id, severity, score, packageName, packageVersion, UNKNOWN_FIX, false, severities)
    }
  }
}

/** The store's CVSS methods by MethodTypeID (its API documents 1 CVSSv2, 2 CVSSv3, 4 CVSSv31, 5 OWASP; anything else is Unknown). */
const STORE_CVSS_METHOD_IDS: ReadonlySet<unknown> = new Set([1, 2, 4])

/**
 * Whether a store rating's score is a CVSS score, the only kind --fail-on-score compares: by MethodTypeID,
 * or by a MethodType name as reports spell it; a rating that says neither is taken as CVSS, as before.
 */
function isStoreCvssRating(rating: Record<string, unknown>): boolean {
  if (typeof rating.MethodTypeID === 'number') return STORE_CVSS_METHOD_IDS.has(rating.MethodTypeID)
  const name = typeof rating.MethodType === 'string' ? rating.MethodType : isObject(rating.MethodType) && typeof rating.MethodType.Name === 'string' ? rating.MethodType.Name : ''
  return name === '' || CVSS_METHODS.has(name)
}

/** Worst first: severity, then score, then ID and package for a stable order (code-unit order: fast, locale-free). */
function compareFindings(a: Judged, b: Judged): number {
  return (
    SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] ||
    (b.score ?? -1) - (a.score ?? -1) ||
    compareText(a.id, b.id) ||
    compareText(a.package, b.package) ||
    compareText(a.version, b.version)
  )
}

/**
 * Sorts in place, worst first as compareFindings orders them. Nothing shows more than MAX_REPORTED_FINDINGS,
 * so past that only severity and score are ordered: findings are grouped by both, and only the groups that
 * reach into the shown part are ordered by ID and package; later groups keep the document's order. A
 * report of 50,000 blocking findings is then not sorted by string comparison as a whole.
 */
function worstFirst<T extends Finding>(findings: T[]): void {
  if (findings.length <= MAX_REPORTED_FINDINGS) {
    findings.sort(compareFindings)
    return
  }
  const groups = new Map<Severity, Map<number, T[]>>()
  for (const finding of findings) {
    let byScore = groups.get(finding.severity)
    if (!byScore) groups.set(finding.severity, (byScore = new Map()))
    const score = finding.score ?? -1
    const group = byScore.get(score)
    if (group) group.push(finding)
    else byScore.set(score, [finding])
  }
  let placed = 0
  for (const severity of [...groups.keys()].sort((a, b) => SEVERITY_RANK[b] - SEVERITY_RANK[a])) {
    const byScore = groups.get(severity)!
    for (const score of [...byScore.keys()].sort((a, b) => b - a)) {
      const group = byScore.get(score)!
      if (placed < MAX_REPORTED_FINDINGS) group.sort(compareFindings)
      for (const finding of group) findings[placed++] = finding
    }
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

// ---------------------------------------------------------------------------------------------
// Pure functions: data from outside is data, never terminal control

/**
 * What a terminal, an XML parser or a log viewer would act on instead of showing: C0 and C1 controls, DEL,
 * line and paragraph separators, bidirectional overrides and isolates (Trojan Source), zero-width marks,
 * the BOM, non-characters and lone surrogates.
 */
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
/** The same, less what JSON.stringify escapes itself (C0, lone surrogates) and the line breaks of its indentation. */
const JSON_UNSAFE_CHARS = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb\ufffe\uffff]/g

const hex = (char: string, digits: number) => char.charCodeAt(0).toString(16).padStart(digits, '0')

/** Every unsafe character shown as an escape (`\x1b`, `\u202e`): one line of plain text, whatever came in. */
export function escapeControls(value: string): string {
  return value.replace(UNSAFE_CHARS, (char) => (char.charCodeAt(0) < 0x100 ? `\\x${hex(char, 2)}` : `\\u${hex(char, 4)}`))
}

/** At most `max` characters, the last an ellipsis when cut; a surrogate pair is never split. */
export function cut(value: string, max: number): string {
  if (value.length <= max) return value
  const end = /[\ud800-\udbff]/.test(value[max - 2] ?? '') ? max - 2 : max - 1
  return `${value.slice(0, end)}…`
}

/** A field from outside, fit for one cell of the text summary. */
export function displayText(value: string, max: number): string {
  return cut(escapeControls(value), max)
}

/** JSON (indented, with a final newline) that no terminal acts on: C1, DEL and the rest are \u-escaped too. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(JSON_UNSAFE_CHARS, (char) => `\\u${hex(char, 4)}`)}\n`
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }

/** XML 1.0 cannot hold most control characters even as references, so they are shown escaped first. */
function xml(value: string): string {
  return escapeControls(value).replace(/[&<>"']/g, (char) => XML_ESCAPES[char]!)
}

/**
 * Fields of the JSON report that hold only the gate's own words (codes, levels, states): a secret is never
 * looked for there, so that no secret, however chosen, can rewrite a verdict or an error code.
 */
const OWN_WORDS: ReadonlySet<string> = new Set(['schemaVersion', 'tool', 'gate', 'mode', 'verdict', 'exitCode', 'enforcedExitCode', 'counts', 'severity', 'rule', 'state', 'kind', 'code', 'warnedBy', 'omitted'])

/** The JSON report with every secret replaced in the strings that came from outside: by value, so the JSON stays JSON. */
export function redactReport<T>(value: T, secrets: readonly string[], key = ''): T {
  if (!secrets.length || OWN_WORDS.has(key)) return value
  if (typeof value === 'string') return redact(value, secrets) as T
  if (Array.isArray(value)) return value.map((item) => redactReport(item, secrets)) as T
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, redactReport(item, secrets, name)])) as T
  return value
}

/** A text summary redacted, all but its verdict line: the gate writes that line from counts alone, and no secret may rewrite it. */
export function redactSummary(text: string, secrets: readonly string[]): string {
  const end = text.lastIndexOf('\n', text.length - 2) + 1
  const last = text.slice(end)
  return /^(?:\x1b\[[\d;]*m)?(?:PASS|FAIL): /.test(last) ? redact(text.slice(0, end), secrets) + last : redact(text, secrets)
}

/** Replaces every secret with [redacted]: as written, and in the escaped forms JSON and XML give it. */
export function redact(output: string, secrets: readonly string[]): string {
  let result = output
  for (const secret of secrets) {
    if (!secret) continue
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), xml(secret)])) {
      if (result.includes(form)) result = result.split(form).join('[redacted]')
    }
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// Pure functions: rendering

export interface RenderOptions {
  readonly color: boolean
}

const ANSI = { red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', bold: '\x1b[1m', reset: '\x1b[0m' }

function painter(color: boolean) {
  return (style: keyof typeof ANSI, value: string) => (color ? `${ANSI[style]}${value}${ANSI.reset}` : value)
}

export function describeGate(gate: Gate): string {
  if (gate === 'none') return 'none (no policy enforced)'
  const levels = SEVERITIES.filter((severity) => isAtOrAbove(severity, gate))
  return `${gate} (fails on ${levels.join(' or ')})`
}

/** The policy beyond the gate, one clause each, for the summary. */
export function describePolicy(policy: Policy, triage: boolean): string[] {
  return [
    ...(policy.failOnScore === undefined ? [] : [`also fails on a score of ${policy.failOnScore} or more`]),
    ...(policy.unknownAs === 'ignore' ? [] : [`unknown severity counts as ${policy.unknownAs}`]),
    ...(policy.onlyFixed ? ['only findings with a fix block'] : []),
    ...(policy.kev ? [`known-exploited CVEs block (${plural(policy.kev.size, 'catalog entry', 'catalog entries')})`] : []),
    ...(policy.baseline ? ['only findings new since the baseline, or worse, block'] : []),
    ...(policy.warnAt && policy.warnAt !== 'none' ? [`warns from ${policy.warnAt} up`] : []),
    ...(policy.scan1 ? [`from ScanPolicy ${policy.scan1.name}`] : []),
    ...(policy.exemptions.length ? [plural(policy.exemptions.length, 'exemption')] : []),
    ...(triage ? [`store triage (${plural(policy.triage.length, 'record')})`] : []),
  ]
}

/** `name@version`, or the name alone when the version is unknown. */
function packageLabel(name: string, version?: string): string {
  return version ? `${name}@${version}` : name
}

function findingRow(finding: Finding, idWidth: number): string {
  const score = finding.score === null ? '   -' : finding.score.toFixed(1).padStart(4)
  const where = displayText(packageLabel(finding.package, finding.version), TEXT_WIDTH.package)
  const why = finding.rule === 'score' ? '  (by score)' : finding.rule === 'unknown-as' ? '  (unknown counted per --unknown-as)' : ''
  const fix = finding.fix.state === 'fixed' ? `  fixed in ${displayText(finding.fix.version, TEXT_WIDTH.id)}` : ''
  const kev = finding.kev ? `  ${describeKev(finding.kev)}` : ''
  return `  ${finding.severity.toUpperCase().padEnd(8)}  ${score}  ${displayText(finding.id, TEXT_WIDTH.id).padEnd(idWidth)}  ${where}${fix}${kev}${why}`
}

/** `; fixed in 1.2.3`, `; no fix yet`, or nothing when the source does not say. */
function describeFix(fix: FixState): string {
  return fix.state === 'fixed' ? `; fixed in ${fix.version}` : fix.state === 'not-fixed' ? '; no fix yet' : ''
}

function describeSuppression(suppression: Suppression): string {
  if (suppression.kind === 'triage') return `triage ${suppression.state}${suppression.justification ? `: ${suppression.justification}` : ''}`
  if (suppression.kind === 'no-fix') return 'no fix yet (--only-fixed)'
  return `exempt until ${suppression.expires}${suppression.owner ? ` (${suppression.owner})` : ''}: ${suppression.reason}`
}

function describeWarning(warning: Warning): string {
  return warning.warnedBy === 'baseline' ? 'inherited from the baseline (the running image has it too)' : `at or above --warn-at`
}

function describeExemption(exemption: Exemption): string {
  const scope = exemption.package ? ` in ${packageLabel(exemption.package.name, exemption.package.version)}` : ''
  return `${exemption.id}${scope}${exemption.owner ? ` (${exemption.owner})` : ''}`
}

/**
 * The summary a developer reads when the pipeline turns red: counts, verdict, what to fix, and what was let
 * through. `image` is the image judged, or, for a document that names no digest, what it says it is the scan of.
 */
export function renderText(evaluation: Evaluation, image: ImageRef | string, options: RenderOptions & { policy?: Policy; triage?: boolean; setAside?: readonly SetAside[] }): string {
  const paint = painter(options.color)
  const { counts, gate, blocking, suppressed, exemptions } = evaluation
  const policyClauses = options.policy ? describePolicy(options.policy, options.triage ?? false) : []
  const lines = [typeof image === 'string' ? `Scan of ${displayText(image, TEXT_WIDTH.note)} (names no image digest)` : `Image  ${image.reference}`, `Gate   ${describeGate(gate)}`]
  if (policyClauses.length) lines.push(`Policy ${displayText(policyClauses.join('; '), TEXT_WIDTH.note)}`)
  lines.push('')
  if (evaluation.findings === 0) {
    lines.push('No vulnerabilities reported for this image.')
  } else {
    const width = Math.max(...SEVERITIES.map((severity) => String(counts[severity]).length))
    const blockingSeverities = new Set(blocking.map((finding) => finding.severity))
    for (const severity of SEVERITIES) {
      const row = `  ${severity.padEnd(8)}  ${String(counts[severity]).padStart(width)}`
      lines.push(blockingSeverities.has(severity) ? paint('red', `${row}  blocking`) : row)
    }
    lines.push(`  ${plural(evaluation.uniqueVulnerabilities, 'unique vulnerability', 'unique vulnerabilities')} in ${plural(evaluation.findings, 'finding')} (package, vulnerability pairs)`)
  }
  const section = (title: string, rows: readonly Finding[], detail?: (finding: Finding) => string) => {
    if (rows.length === 0) return
    const listed = rows.slice(0, MAX_LISTED_FINDINGS)
    const idWidth = Math.max(...listed.map((finding) => displayText(finding.id, TEXT_WIDTH.id).length))
    lines.push('', title)
    for (const finding of listed) lines.push(`${findingRow(finding, idWidth)}${detail ? `  ${displayText(detail(finding), TEXT_WIDTH.note)}` : ''}`)
    if (rows.length > listed.length) lines.push(`  ... and ${rows.length - listed.length} more (--format json lists up to ${MAX_REPORTED_FINDINGS})`)
  }
  section('Blocking findings, worst first:', blocking)
  // Known-exploited findings an exemption lets through are listed first and apart: they are the riskiest thing let through.
  const exemptedKev = suppressed.filter((finding) => finding.kev)
  if (exemptedKev.length) {
    lines.push('', paint('red', `Known exploited, yet exempted (kev: accepted): ${plural(exemptedKev.length, 'finding')}`))
    section('Known-exploited findings exempted:', exemptedKev, (finding) => describeSuppression((finding as SuppressedFinding).suppressedBy))
  }
  section('Suppressed, would block otherwise:', exemptedKev.length ? suppressed.filter((finding) => !finding.kev) : suppressed, (finding) => describeSuppression((finding as SuppressedFinding).suppressedBy))
  section('Warnings, do not block:', evaluation.warnings, (finding) => describeWarning(finding as Warning))
  const scan1 = options.policy?.scan1
  const passedBefore = scan1 ? blocking.filter((finding) => finding.passedUnderScan1) : []
  if (scan1 && passedBefore.length) {
    const rule = scan1.template === 'grype' ? 'when any one of its ratings was outside notAllowedSeverities' : 'when none of its ratings was in notAllowedSeverities'
    section(`Blocked now, passed under Scan 1.0 (ScanPolicy ${displayText(scan1.name, TEXT_WIDTH.id)} passed a finding ${rule}; the gate takes the highest rating):`, passedBefore)
  }
  const notes = [
    ...exemptions.expired.map((exemption) => `expired ${exemption.expires}, no longer applies: ${describeExemption(exemption)}`),
    ...exemptions.expiringSoon.map((exemption) => `expires ${exemption.expires}, within ${EXPIRY_WARNING_DAYS} days: ${describeExemption(exemption)}`),
    ...exemptions.stale.map((exemption) => `stale, matches nothing in this image: ${describeExemption(exemption)}`),
    ...evaluation.kevNotAccepted.map((exemption) => `not applied to a known-exploited finding (add kev: accepted to apply it): ${describeExemption(exemption)}`),
    ...exemptions.permanent.map((exemption) => `no expiry (give it one: --scan-policy ... --print-exemptions): ${describeExemption(exemption)}`),
  ]
  if (notes.length) lines.push('', 'Exemptions to review:', ...notes.map((note) => paint('yellow', `  ${displayText(note, TEXT_WIDTH.note)}`)))
  const setAside = options.setAside ?? []
  if (setAside.length) {
    lines.push('', 'Set aside, no vulnerabilities to judge:')
    for (const aside of setAside.slice(0, MAX_LISTED_FINDINGS)) lines.push(`  ${displayText(aside.what, TEXT_WIDTH.package)}  ${displayText(aside.reason, TEXT_WIDTH.note)}`)
    if (setAside.length > MAX_LISTED_FINDINGS) lines.push(`  ... and ${setAside.length - MAX_LISTED_FINDINGS} more (--format json lists up to ${MAX_REPORTED_FINDINGS})`)
  }
  if (options.policy?.onlyFixed && evaluation.fixUnknown) {
    lines.push('', paint('yellow', `--only-fixed: the source does not say whether ${plural(evaluation.fixUnknown, 'finding')} ${evaluation.fixUnknown === 1 ? 'has' : 'have'} a fix (the Metadata Store, an older Grype, or another producer), so ${evaluation.fixUnknown === 1 ? 'it counts' : 'they count'} as fixable`))
  }
  lines.push('')
  if (evaluation.passed) lines.push(paint('green', verdictSentence(evaluation)))
  else lines.push(`${paint('red', verdictSentence(evaluation))} Upgrade the packages above, or rebuild on a patched base image.`)
  return `${lines.join('\n')}\n`
}

/** The verdict in one sentence, as the summary ends and the Tekton result `message` says it. */
export function verdictSentence(evaluation: Evaluation): string {
  const { gate, blocking, suppressed, warnings } = evaluation
  if (evaluation.passed) {
    const aside = [...(suppressed.length ? [`${plural(suppressed.length, 'finding')} suppressed`] : []), ...(warnings.length ? [plural(warnings.length, 'warning')] : [])]
    return `PASS: nothing blocks at gate ${gate}${aside.length ? ` (${aside.join(', ')})` : ''}.`
  }
  const ids = new Set(blocking.map((finding) => finding.id)).size
  return `FAIL: ${plural(ids, 'vulnerability', 'vulnerabilities')} (${plural(blocking.length, 'finding')}) ${ids === 1 ? 'blocks' : 'block'} at gate ${gate}.`
}

function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`
}

export type Verdict = 'pass' | 'fail' | 'skipped' | 'error'

export interface JsonReport {
  readonly schemaVersion: 1
  readonly tool: { readonly name: string; readonly version: string }
  readonly image: ImageRef | null
  /** What the verdict is about: the image's reference, or the subject of a document that names no digest. */
  readonly subject: string | null
  readonly gate: Gate | null
  readonly mode: Mode
  readonly verdict: Verdict
  /** The process exit code: 0 in audit mode. */
  readonly exitCode: number
  /** What enforce mode exits with; equals exitCode there. */
  readonly enforcedExitCode: number
  readonly counts: Record<Severity, number> | null
  readonly uniqueVulnerabilities: number | null
  readonly findings: number | null
  readonly blocking: readonly Finding[]
  readonly suppressed: readonly SuppressedFinding[]
  readonly warnings: readonly Warning[]
  /** Findings judged that neither block, warn nor are suppressed. */
  readonly passing: readonly Judged[]
  /** What the input held that is no vulnerability to judge (a bundle's SBOM, imgpkg's metadata), each with why. */
  readonly setAside: readonly SetAside[]
  /** Unique known-exploited vulnerability IDs among all findings. */
  readonly knownExploited: number | null
  /** Findings left out of `blocking`, `suppressed`, `warnings` and `passing` beyond the first MAX_REPORTED_FINDINGS of each. */
  readonly omitted: { readonly blocking: number; readonly suppressed: number; readonly warnings: number; readonly passing: number }
  readonly exemptions: Evaluation['exemptions'] | null
  readonly error: { readonly code: string; readonly message: string } | null
  /** Why the run ended as it did, in one word: the error's code, POLICY_VIOLATION, PASSED or GATE_NONE. */
  readonly reason: string
  /** The same in one sentence, as the log ends: the verdict line, or what failed and what to do. */
  readonly message: string
}

/** Every string in a finding or exemption cut to MAX_REPORT_FIELD, so that a report stays proportional to what a reader can use. */
function bounded<T>(value: T): T {
  if (typeof value === 'string') return cut(value, MAX_REPORT_FIELD) as T
  if (Array.isArray(value)) return value.map(bounded) as T
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, bounded(item)])) as T
  return value
}

const listed = <T>(items: readonly T[]): T[] => items.slice(0, MAX_REPORTED_FINDINGS).map(bounded)

/** How a run ended, before it is written anywhere. */
export interface Outcome {
  /** There whenever a verdict was reached. */
  readonly evaluation?: Evaluation
  /** Gate none: nothing was judged. */
  readonly skipped?: true
  /** What the input held besides vulnerabilities, left out with a reason. */
  readonly setAside?: readonly SetAside[]
  /** Why there is no verdict, or why the verdict could not be recorded; `usage` when the configuration was wrong (exit 2). */
  readonly error?: { readonly code: string; readonly message: string; readonly usage?: true }
}

export interface ExitDecision {
  /** What the process exits with. */
  readonly exitCode: number
  /** What enforce mode exits with; equals exitCode there. */
  readonly enforcedExitCode: number
}

/**
 * The one place an outcome becomes an exit code: an error means no verdict (3), a blocking finding a
 * violation (1), anything else a pass; audit mode reports the same and exits 0.
 */
export function decideExit(outcome: Outcome, mode: Mode): ExitDecision {
  // Audit mode never breaks a chain: a configuration error is reported, and exits 0 there too.
  const enforcedExitCode = outcome.error?.usage ? EXIT.USAGE : outcome.error ? EXIT.NO_VERDICT : outcome.evaluation && !outcome.evaluation.passed ? EXIT.VIOLATION : EXIT.PASS
  return { enforcedExitCode, exitCode: mode === 'audit' ? EXIT.PASS : enforcedExitCode }
}

/** The exit code an error carries: its own, or no verdict for anything unexpected (a bug). */
export function exitCodeFor(error: unknown): number {
  return error instanceof UsageError || error instanceof NoVerdictError || error instanceof InterruptedError ? error.exitCode : EXIT.NO_VERDICT
}

/** The machine report of one run, with the exit decision it was given. */
export function buildJsonReport(run: { readonly image: ImageRef | null; readonly subject?: string; readonly gate: Gate | null; readonly mode?: Mode }, outcome: Outcome, decision = decideExit(outcome, run.mode ?? 'enforce')): JsonReport {
  const evaluation = outcome.evaluation ?? null
  const verdict: Verdict = evaluation ? (evaluation.passed ? 'pass' : 'fail') : outcome.skipped ? 'skipped' : 'error'
  const exemptions = evaluation?.exemptions
  return {
    schemaVersion: 1,
    tool: { name: NAME, version: VERSION },
    image: run.image,
    subject: run.image?.reference ?? (run.subject === undefined ? null : cut(run.subject, MAX_REPORT_FIELD)),
    gate: run.gate,
    mode: run.mode ?? 'enforce',
    verdict,
    exitCode: decision.exitCode,
    enforcedExitCode: decision.enforcedExitCode,
    counts: evaluation?.counts ?? null,
    uniqueVulnerabilities: evaluation?.uniqueVulnerabilities ?? null,
    findings: evaluation?.findings ?? null,
    blocking: listed(evaluation?.blocking ?? []),
    suppressed: listed(evaluation?.suppressed ?? []),
    warnings: listed(evaluation?.warnings ?? []),
    passing: listed(evaluation?.passing ?? []),
    setAside: listed(outcome.setAside ?? []),
    knownExploited: evaluation?.knownExploited ?? null,
    omitted: {
      blocking: Math.max(0, (evaluation?.blocking.length ?? 0) - MAX_REPORTED_FINDINGS),
      suppressed: Math.max(0, (evaluation?.suppressed.length ?? 0) - MAX_REPORTED_FINDINGS),
      warnings: Math.max(0, (evaluation?.warnings.length ?? 0) - MAX_REPORTED_FINDINGS),
      passing: Math.max(0, (evaluation?.passingCount ?? 0) - MAX_REPORTED_FINDINGS),
    },
    exemptions: exemptions ? { expired: listed(exemptions.expired), expiringSoon: listed(exemptions.expiringSoon), stale: listed(exemptions.stale), permanent: listed(exemptions.permanent) } : null,
    error: outcome.error ? { code: outcome.error.code, message: cut(outcome.error.message, 4 * MAX_REPORT_FIELD) } : null,
    reason: outcome.error ? outcome.error.code : evaluation ? (evaluation.passed ? 'PASSED' : 'POLICY_VIOLATION') : 'GATE_NONE',
    message: `${decision.exitCode !== decision.enforcedExitCode ? 'AUDIT, not enforced: ' : ''}${
      outcome.error ? cut(`${outcome.error.usage ? '' : 'no verdict: '}${outcome.error.message}`, 4 * MAX_REPORT_FIELD) : evaluation ? verdictSentence(evaluation) : 'gate none: no policy enforced.'
    }`,
  }
}

const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = { critical: 'error', high: 'error', medium: 'warning', low: 'note', unknown: 'note' }

/** SARIF 2.1.0: one rule per vulnerability ID, one result per blocking or suppressed finding. */
export function renderSarif(report: JsonReport): string {
  const findings: ReadonlyArray<Finding & { suppressedBy?: Suppression; warnedBy?: Warning['warnedBy'] }> = [...report.blocking, ...report.suppressed, ...report.warnings]
  // Findings come worst first, so the first one of an ID describes its rule.
  const firstById = new Map<string, Finding>()
  for (const finding of findings) if (!firstById.has(finding.id)) firstById.set(finding.id, finding)
  const ruleIndex = new Map([...firstById.keys()].map((id, index) => [id, index]))
  const kevIds = new Set(findings.filter((finding) => finding.kev).map((finding) => finding.id))
  const artifact = report.image ? report.image.reference.split('@')[0] || report.image.digest : (report.subject ?? 'image')
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: NAME,
            version: VERSION,
            informationUri: 'https://github.com/amr-policy-gate/amr-policy-gate',
            rules: [...firstById.values()].map(({ id, severity, score }) => ({
              id,
              shortDescription: { text: `${id} (${severity})` },
              ...(/^CVE-\d+-\d+$/i.test(id) ? { helpUri: `https://nvd.nist.gov/vuln/detail/${id.toUpperCase()}` } : {}),
              properties: { tags: ['security', 'vulnerability', ...(kevIds.has(id) ? ['known-exploited'] : [])], ...(score === null ? {} : { 'security-severity': score.toFixed(1) }) },
            })),
          },
        },
        invocations: [{ executionSuccessful: report.verdict !== 'error', exitCode: report.exitCode, ...(report.error ? { toolExecutionNotifications: [{ level: 'error', message: { text: report.error.message } }] } : {}) }],
        results: findings.map((finding) => ({
          ruleId: finding.id,
          ruleIndex: ruleIndex.get(finding.id),
          level: finding.warnedBy ? 'warning' : SARIF_LEVEL[finding.severity],
          message: { text: `${finding.id} (${finding.severity}${finding.score === null ? '' : `, score ${finding.score}`}) in ${packageLabel(finding.package, finding.version)} ${finding.warnedBy ? `is a warning: ${describeWarning(finding as Warning)}` : `${finding.suppressedBy ? 'would block' : 'blocks'} at gate ${report.gate}`}${finding.kev ? `; ${describeKev(finding.kev)}` : ''}` },
          locations: [
            {
              physicalLocation: { artifactLocation: { uri: artifact } },
              logicalLocations: [{ name: packageLabel(finding.package, finding.version), kind: 'package' }],
            },
          ],
          properties: {
            fixState: finding.fix.state,
            ...(finding.fix.state === 'fixed' ? { fixedIn: finding.fix.version } : {}),
            ...(finding.kev ? { knownExploited: finding.kev } : {}),
            ...(finding.warnedBy ? { warning: finding.warnedBy } : {}),
          },
          ...(finding.suppressedBy ? { suppressions: [{ kind: 'external', status: 'accepted', justification: describeSuppression(finding.suppressedBy) }] } : {}),
        })),
      },
    ],
  }
  return toJson(sarif)
}

/** JUnit XML: one failing test case per blocking finding, suppressed ones skipped, an error when there is no verdict. */
export function renderJunit(report: JsonReport): string {
  const name = report.subject ?? 'image'
  const testCase = (title: string, outcome?: string) =>
    `    <testcase classname="${xml(name)}" name="${xml(title)}"${outcome ? `>\n      ${outcome}\n    </testcase>` : '/>'}`
  const findingTitle = (finding: Finding) => `${finding.id} in ${packageLabel(finding.package, finding.version)}`
  const cases = [
    ...report.blocking.map((finding) =>
      testCase(findingTitle(finding), `<failure type="${finding.severity}" message="${xml(`${finding.id} (${finding.severity}) blocks at gate ${report.gate}${finding.kev ? `, ${describeKev(finding.kev)}` : ''}${describeFix(finding.fix)}`)}"/>`),
    ),
    ...report.suppressed.map((finding) => testCase(findingTitle(finding), `<skipped message="${xml(describeSuppression(finding.suppressedBy))}"/>`)),
    // A warning passes: JUnit has no warning outcome, so it says so in its output.
    ...report.warnings.map((finding) => testCase(findingTitle(finding), `<system-out>${xml(`WARNING: ${finding.id} (${finding.severity}) ${describeWarning(finding)}${describeFix(finding.fix)}`)}</system-out>`)),
  ]
  if (report.error) cases.push(testCase('verdict', `<error type="${xml(report.error.code)}" message="${xml(report.error.message)}"/>`))
  else if (report.blocking.length === 0) cases.push(testCase(`gate ${report.gate}: ${report.verdict}`))
  const failures = report.blocking.length
  const errors = report.error ? 1 : 0
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${NAME}" tests="${cases.length}" failures="${failures}" errors="${errors}">`,
    `  <testsuite name="${xml(`${NAME} ${name}`)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="${report.suppressed.length}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}

export function renderReport(report: JsonReport, format: ReportFormat): string {
  if (format === 'sarif') return renderSarif(report)
  if (format === 'junit') return renderJunit(report)
  return toJson(report)
}

/** What --help says of an option's values and default. */
function describeValues(option: OptionSpec): string {
  const choices = option.choices ? `${option.choices.join(' | ')}: ` : ''
  const fallback = option.required ? ' (required)' : option.default || option.defaultText ? ` (default: ${option.default ?? option.defaultText})` : ''
  return `${choices}${option.help}${fallback}`
}

export function renderHelp(): string {
  const optionRows = OPTIONS.map((option) => {
    const left = option.value ? `${option.flag} ${option.value}` : option.flag
    return `  ${left.padEnd(26)}${describeValues(option)}${option.env ? ` [env ${option.env}]` : ''}`
  })
  return [
    `${NAME} ${VERSION}`,
    '',
    'Waits until the Tanzu Metadata Store holds the scan of an image, then fails when any vulnerability',
    "is at or above the gate. A vulnerability's severity is the highest of its ratings.",
    '',
    'Usage:',
    `  ${NAME} [options] <image>`,
    '  <image> is [registry[:port]/]repo[:tag]@sha256:<64 hex> or sha256:<64 hex>; with --input it may be left out',
    '  when the document names the digest it scanned (--input also takes a scanner\'s CycloneDX JSON)',
    '',
    'Options (each also read from the environment variable shown; a flag wins, and may be given once):',
    ...optionRows,
    '',
    'Environment:',
    ...ENVIRONMENT.map(({ name, help }) => `  ${name.padEnd(26)}${help}`),
    '',
    'Examples:',
    `  GATE=high METADATA_STORE_URL=metadata-store.example.com ACCESS_TOKEN=... ${NAME} registry.example.com/app@sha256:<digest>`,
    `  ${NAME} --gate critical --url https://localhost:8443 --token-file token --ca-cert ca.crt sha256:<digest>`,
    `  ${NAME} --gate high --input image.json --format json sha256:<digest>`,
    '',
    'Exit codes:',
    ...EXIT_CODES.map(([code, meaning]) => `  ${String(code).padEnd(4)}${meaning}`),
    '',
  ].join('\n')
}

const code = (value: string) => `\`${value}\``

/** The README's options table, row by row: the docs test holds the README to it. */
export function renderOptionsTable(): string[] {
  return [
    '| option | env | default | meaning |',
    '|---|---|---|---|',
    ...OPTIONS.map((option) => {
      const fallback = option.required ? '(required)' : option.default ? code(option.default) : (option.defaultText ?? '')
      const choices = option.choices ? `${option.choices.map(code).join(', ')}: ` : ''
      const meaning = `${choices}${option.help.charAt(0).toUpperCase()}${option.help.slice(1)}.${option.more ? ` ${option.more}` : ''}`
      return `| ${code(option.value ? `${option.flag} ${option.value}` : option.flag)} | ${option.env ? code(option.env) : ''} | ${fallback} | ${meaning} |`
    }),
    ...ENVIRONMENT.map(({ name, help }) => `| | ${code(name)} | | ${help.charAt(0).toUpperCase()}${help.slice(1)}. |`),
  ]
}

/** The README's exit-code table, row by row. */
export function renderExitCodeTable(): string[] {
  return ['| code | meaning |', '|---|---|', ...EXIT_CODES.map(([exit, meaning]) => `| ${exit} | ${meaning} |`)]
}

/** Listed in the `blocking` Tekton result at most; the whole set of results stays far below Tekton's 4 KB. */
const MAX_RESULT_IDS = 10
/** Tekton results: the `message` result at most this many bytes (the 4 KB of all results together stay far off). */
const MAX_RESULT_MESSAGE_BYTES = 512

/** One ID of the comma-separated `blocking` result: one short line with no comma of its own. */
function resultId(id: string): string {
  return cut(escapeControls(id).replace(/,/g, '\\x2c'), MAX_RESULT_ID)
}

/** The Tekton results, name → content: the verdict, the count per severity, the blocking IDs (about 800 bytes at most). */
export function tektonResults(report: JsonReport): Record<string, string> {
  const ids = [...new Set(report.blocking.map((finding) => finding.id))]
  const more = ids.length - MAX_RESULT_IDS + report.omitted.blocking
  const listed = ids.slice(0, MAX_RESULT_IDS).map(resultId).join(',')
  return {
    verdict: report.verdict,
    ...Object.fromEntries(SEVERITIES.map((severity) => [severity, report.counts ? String(report.counts[severity]) : ''])),
    blocking: more > 0 ? `${listed} (+${more} more)` : listed,
    warnings: report.counts ? String(report.warnings.length + report.omitted.warnings) : '',
    kev: report.knownExploited === null ? '' : String(report.knownExploited),
    reason: report.reason,
    message: cutBytes(escapeControls(report.message), MAX_RESULT_MESSAGE_BYTES),
  }
}

/** At most `max` bytes of UTF-8, cut at a character (the last an ellipsis when cut). */
export function cutBytes(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text
  let end = Math.min(text.length, max)
  while (end > 0 && Buffer.byteLength(text.slice(0, end)) > max - 3) end--
  if (/[\ud800-\udbff]/.test(text[end - 1] ?? '')) end-- // never half a surrogate pair
  return `${text.slice(0, end)}…`
}

// ---------------------------------------------------------------------------------------------
// Configuration: flags, then env, then defaults; all checked before any file is read or request sent.

export interface Environment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly fileExists: (path: string) => boolean
  readonly isDirectory: (path: string) => boolean
  readonly isWritableDirectory: (path: string) => boolean
}

function pick(values: ReadonlyMap<string, string>, env: Environment['env'], flag: string, envName?: string): { value: string; origin: string } | undefined {
  const fromFlag = values.get(flag)
  if (fromFlag !== undefined) return { value: fromFlag, origin: flag }
  const fromEnv = envName ? env[envName] : undefined
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv, origin: envName! }
  return undefined
}

/** json unless the report file's name says sarif (.sarif, .sarif.json) or junit (.xml). */
function reportFormatFor(path: string): ReportFormat {
  if (/\.sarif(\.json)?$/i.test(path)) return 'sarif'
  return /\.xml$/i.test(path) ? 'junit' : 'json'
}

const specOf = (flag: Flag): OptionSpec => OPTIONS.find((option) => option.flag === flag)!

/** Each option from its flag, else from its environment variable, else (with `withDefault`) from its default in OPTIONS. */
function optionReader(values: ReadonlyMap<string, string>, env: Environment['env']) {
  const get = (flag: Flag) => pick(values, env, flag, specOf(flag).env)
  const read = <T>(flag: Flag, parse: (value: string, origin: string) => T): T | undefined => {
    const input = get(flag)
    return input ? parse(input.value, input.origin) : undefined
  }
  const withDefault = <T>(flag: Flag, parse: (value: string, origin: string) => T): T => {
    const fallback = specOf(flag).default
    if (fallback === undefined) throw new Error(`${flag} has no default in OPTIONS`) // a bug in the table, caught by the tests
    return read(flag, parse) ?? parse(fallback, `the default ${flag}`)
  }
  return { get, read, withDefault }
}

type OptionReader = ReturnType<typeof optionReader>

/** --report-file must name a file whose folder exists and is writable: found now, not after a 20-minute wait. */
function checkReportPath(input: { value: string; origin: string }, environment: Environment): string {
  const fail = (problem: string) => new UsageError('REPORT_FILE', `${input.origin} ${JSON.stringify(input.value)} ${problem}`)
  if (!input.value.trim()) throw fail('is empty: name the file to write, e.g. report.sarif')
  if (input.value.endsWith('/') || environment.isDirectory(input.value)) throw fail('is a folder: name a file in it, e.g. report.json')
  if (!environment.isWritableDirectory(dirname(input.value))) throw fail('cannot be written: its folder is missing or not writable')
  return input.value
}

function checkResultsDir(input: { value: string; origin: string }, environment: Environment): string {
  if (!input.value.trim()) throw new UsageError('RESULTS_DIR', `${input.origin} is empty: in a Task use /tekton/results`)
  if (!environment.isWritableDirectory(input.value)) {
    throw new UsageError('RESULTS_DIR', `${input.origin} ${input.value} is not a writable directory: in a Task use /tekton/results`)
  }
  return input.value
}

export function resolveConfig(values: ReadonlyMap<string, string>, positionals: readonly string[], environment: Environment, now = Date.now(), scanPolicy?: ScanPolicyImport): Config {
  const { env } = environment
  const options = optionReader(values, env)
  const { get, read, withDefault } = options
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0') {
    throw new UsageError('INSECURE_TLS', 'NODE_TLS_REJECT_UNAUTHORIZED=0 would send the token to an unverified store: unset it and give the CA with --ca-cert')
  }
  if (positionals.length > 1) throw new UsageError('IMAGE', `one image at a time, got ${positionals.length}: ${positionals.join(' ')}`)
  // `store` names the default source, so a workload can take back a chain's `auto`.
  const scanResultGiven = get('--scan-result')
  const scanResultInput = scanResultGiven?.value.trim().toLowerCase() === 'store' ? undefined : scanResultGiven
  const followsScan = scanResultInput !== undefined && scanResultInput.value.trim().toLowerCase() === 'auto'
  // A fixed document (--input, a scan result's reference) may name what it scanned; otherwise the image is needed.
  const fixedDocument = values.get('--input') !== undefined ? '--input' : scanResultInput && !followsScan ? 'a fixed --scan-result' : undefined
  const image = positionals[0] === undefined && fixedDocument ? undefined : parseImageRef(positionals[0] ?? '')
  const gate = read('--gate', parseGate) ?? scanPolicy?.gate
  if (!gate) throw new UsageError('GATE', 'no gate given: set --gate or GATE to none, low, medium, high or critical')
  const resultsInput = get('--results-dir')
  const resultsDir = resultsInput ? checkResultsDir(resultsInput, environment) : undefined
  const reportInput = get('--report-file')
  const reportPath = reportInput ? checkReportPath(reportInput, environment) : undefined
  const failOnScore = read('--fail-on-score', parseScore)
  const newerThan = read('--newer-than', (value, origin) => parseNewerThan(value, now, origin))
  const exemptionsFile = get('--exemptions')?.value
  const scanSelector = read('--scan-selector', parseLabelSelector)
  const warnAt = withDefault('--warn-at', (value, origin) => parseGate(value, origin))
  if (warnAt !== 'none' && (gate === 'none' || SEVERITY_RANK[warnAt] >= SEVERITY_RANK[gate])) {
    const fix = gate === 'none' ? 'gate none evaluates nothing: to report without failing, use --mode audit' : `warnings are what does not block, so below the gate (${gate}): use ${GATES.filter((level) => level !== 'none' && SEVERITY_RANK[level] < SEVERITY_RANK[gate]).join(', ') || 'none'}`
    throw new UsageError('WARN_AT', `--warn-at ${warnAt} with --gate ${gate}: ${fix}`)
  }
  const kevFile = get('--kev')?.value
  const baselineImage = read('--baseline', (value, origin) => parseImageRef(value, origin))
  const baselineInput = get('--baseline-input')?.value
  const common: Config = {
    ...(image ? { image } : {}),
    gate,
    format: withDefault('--format', parseFormat),
    mode: withDefault('--mode', parseMode),
    unknownAs: read('--unknown-as', parseUnknownAs) ?? scanPolicy?.unknownAs ?? withDefault('--unknown-as', parseUnknownAs),
    triage: read('--triage', parseBoolean) ?? false,
    onlyFixed: read('--only-fixed', parseBoolean) ?? false,
    maxBodyBytes: withDefault('--max-body-size', parseSize),
    timeoutMs: withDefault('--timeout', parseDuration),
    ...(failOnScore === undefined ? {} : { failOnScore }),
    ...(newerThan === undefined ? {} : { newerThan }),
    ...(exemptionsFile ? { exemptionsFile } : {}),
    ...(scanSelector ? { scanSelector } : {}),
    warnAt,
    ...(kevFile ? { kevFile } : {}),
    ...(scanPolicy ? { scanPolicy } : {}),
    ...(baselineImage || baselineInput ? { baseline: { ...(baselineImage ? { image: baselineImage } : {}), ...(baselineInput ? { input: baselineInput } : {}) } } : {}),
    ...(resultsDir ? { resultsDir } : {}),
    ...(reportPath ? { report: { path: reportPath, format: read('--report-format', parseReportFormat) ?? reportFormatFor(reportPath) } } : {}),
  }
  if (gate === 'none') return common
  const input = values.get('--input')
  const notFromStore = input !== undefined ? '--input' : scanResultInput?.origin
  if (notFromStore) {
    if (input !== undefined && scanResultInput) throw new UsageError('INPUT', `--input and ${scanResultInput.origin} both say where the scan comes from: give one`)
    const needsStore = common.triage ? '--triage' : common.newerThan !== undefined ? '--newer-than' : undefined
    if (needsStore) throw new UsageError('INPUT', `${needsStore} asks the store, which ${notFromStore} does not: drop one of them`)
  }
  if (baselineImage && !baselineInput && fixedDocument) {
    throw new UsageError('BASELINE', `--baseline with ${fixedDocument}: there is nowhere to read the baseline's scan from, so give its saved document with --baseline-input`)
  }
  if (input !== undefined) {
    if (!input.trim()) throw new UsageError('INPUT', '--input is empty: name the saved report, or - for stdin')
    return { ...common, source: { input } }
  }
  if (scanResultInput) return { ...common, source: { scanResult: resolveScanResultSource(scanResultInput, followsScan, options, environment) } }
  return { ...common, source: { store: resolveStoreSource(options, environment) } }
}

function resolveScanResultSource(input: { value: string; origin: string }, auto: boolean, { get, withDefault }: OptionReader, environment: Environment): ScanResultSource {
  const { env } = environment
  const configInput = get('--registry-config')
  const defaultConfig = env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : undefined
  const registryConfig = configInput ? { file: configInput.value, origin: configInput.origin } : defaultConfig && environment.fileExists(defaultConfig) ? { file: defaultConfig, origin: 'DOCKER_CONFIG' } : undefined
  const caInput = get('--registry-ca-cert')
  if (auto && !env.KUBERNETES_SERVICE_HOST?.trim()) {
    throw new UsageError('KUBERNETES', `${input.origin} auto follows the image's ImageVulnerabilityScan from inside a pod, and KUBERNETES_SERVICE_HOST is not set: give the scan result's reference instead (status.scanResult)`)
  }
  return {
    ref: auto ? 'auto' : parseOciRef(input.value, input.origin),
    ...(registryConfig ? { registryConfig } : {}),
    ...(caInput ? { registryCa: { file: caInput.value, origin: caInput.origin } } : {}),
    pollIntervalMs: withDefault('--poll-interval', parseDuration),
    proxied: checkProxyEnv(env),
  }
}

function resolveStoreSource({ get, withDefault }: OptionReader, environment: Environment): StoreSource {
  const { env } = environment
  const urlInput = get('--url')
  if (!urlInput) throw new UsageError('URL', 'no store given: set --url or METADATA_STORE_URL (e.g. metadata-store.<ingress domain>), or evaluate a saved report with --input')
  const baseUrl = parseStoreUrl(urlInput.value, urlInput.origin)
  const proxied = checkProxyEnv(env)

  const tokenFile = get('--token-file')
  let token: StoreSource['token']
  if (tokenFile) {
    if (!tokenFile.value.trim()) throw new UsageError('TOKEN', `${tokenFile.origin} is empty: name the file that holds the token`)
    token = { file: tokenFile.value, origin: tokenFile.origin }
  } else if (env.ACCESS_TOKEN !== undefined) token = { value: checkToken(env.ACCESS_TOKEN, 'ACCESS_TOKEN') }
  else throw new UsageError('TOKEN', 'no token given: set ACCESS_TOKEN (from secret metadata-store-access-token), ACCESS_TOKEN_FILE or --token-file')

  const caInput = get('--ca-cert')
  let ca: StoreSource['ca']
  if (caInput && caInput.origin !== '--ca-cert' && caInput.value.includes('-----BEGIN')) ca = { pem: caInput.value, origin: caInput.origin }
  else if (caInput) ca = { file: caInput.value, origin: caInput.origin }
  else if (environment.fileExists(DEFAULT_CA_PATH)) ca = { file: DEFAULT_CA_PATH, origin: 'the default' }

  return {
    baseUrl,
    token,
    ...(ca ? { ca } : {}),
    pollIntervalMs: withDefault('--poll-interval', parseDuration),
    proxied,
  }
}

/** The CA's PEM must hold a certificate; anything else is the wrong file or secret key. */
export function checkCa(pem: string, origin: string, whose = "the store's CA (secret metadata-store-cert, key caCrt)"): string {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError('CA', `the CA from ${origin} holds no PEM certificate: give ${whose}`)
  }
  return pem
}

// ---------------------------------------------------------------------------------------------
// Waiting for the store: pure classification, then a loop with injected I/O.

export interface StoreResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
}

/** What one request's answer means for the wait: done, wait and try again, or give up (not a Tekton step). */
export type PollOutcome =
  | { readonly kind: 'done'; readonly document: unknown }
  | {
      readonly kind: 'retry'
      readonly reason: string
      /** What Retry-After asked for; the wait is still at least RETRY_BASE_MS and at most the time left. */
      readonly delayMs?: number
      readonly backoff: boolean
      readonly notFound?: true
      /** Give up with `error` after this many such answers in a row (a host that does not resolve). */
      readonly giveUp?: { readonly after: number; readonly error: NoVerdictError }
      /** What to check when the deadline passes with this the last failure, instead of the wait's own hint. */
      readonly hint?: string
    }
  | { readonly kind: 'fail'; readonly error: NoVerdictError }

const TLS_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
])

/** An error and its causes, outermost first (at most seven: a cause chain can loop). */
function causeChain(error: unknown): Array<Record<string, unknown>> {
  const chain: Array<Record<string, unknown>> = []
  for (let current = error; (isObject(current) || current instanceof Error) && chain.length < 7; current = (current as { cause?: unknown }).cause) {
    chain.push(current as Record<string, unknown>)
  }
  return chain
}

/** The string values of `field` (e.g. code, hostname) along an error's cause chain. */
function errorField(error: unknown, field: string): string[] {
  return causeChain(error).flatMap((link) => (typeof link[field] === 'string' && link[field] ? [link[field] as string] : []))
}


function firstLine(body: string, max = 200): string {
  const line = body.trim().split('\n', 1)[0]!.trim()
  return line.length > max ? `${line.slice(0, max)}...` : line
}

/** An HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms). Date.parse alone takes "1.5" or "-1" as dates. */
const HTTP_DATE_RE = /^(?:[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]+, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/

/** Whole seconds or an HTTP date, as milliseconds from `now` (0 for a date past); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const header = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!header) return undefined
  if (/^\d+$/.test(header)) return Number(header) * 1_000
  const date = HTTP_DATE_RE.test(header) ? Date.parse(header) : Number.NaN
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/** What a timer may be set to: Node turns anything above 2^31-1 ms (or below 0) into 1 ms. */
export function timerMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(ms)))
}

/**
 * How long to wait before the next try: the poll interval (jittered) after "not yet"; after a failure,
 * what Retry-After asked for, or 1 s doubling to 30 s (jittered), and never less than 1 s, so that no
 * answer can make a hot loop. The caller cuts it to the time left.
 */
export function retryDelay(step: Extract<PollOutcome, { kind: 'retry' }>, failures: number, pollIntervalMs: number, random: number): number {
  const jitter = 0.8 + 0.4 * random
  if (!step.backoff) return Math.round(pollIntervalMs * jitter)
  if (step.delayMs !== undefined) return Math.max(RETRY_BASE_MS, step.delayMs)
  return Math.max(RETRY_BASE_MS, Math.round(Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1)) * jitter))
}

/** JSON.parse of text from outside: a byte order mark at the start (Windows tools write one) is no part of the JSON. */
export function parseJson(text: string): unknown {
  return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
}

/**
 * parseJson, or NoVerdictError('MALFORMED_RESPONSE'): "${source} is not JSON", quoting the start of the body
 * through `quote` (a peer that holds a secret redacts before the quote is cut, or withholds it).
 */
function parseJsonBody(body: string, source: string, quote: (text: string) => string = (text) => text): unknown {
  try {
    return parseJson(body)
  } catch (error) {
    throw new NoVerdictError('MALFORMED_RESPONSE', `${source} is not JSON (${quote((error as Error).message)}): "${firstLine(quote(body), 80)}"`)
  }
}

/** A 200's body as a document, or the end of the run when it is not JSON. */
function answered(body: string, who: string): PollOutcome {
  try {
    return { kind: 'done', document: parseJsonBody(body, `${who} answered 200 with a body that`) }
  } catch (error) {
    return { kind: 'fail', error: error as NoVerdictError }
  }
}

/** A 429 or 5xx: try again, after what Retry-After asks for or with backoff. */
function busy(reason: string, headers: StoreResponse['headers'], now: number): Extract<PollOutcome, { kind: 'retry' }> {
  const retryAfter = parseRetryAfter(headers['retry-after'], now)
  return { kind: 'retry', reason, backoff: true, ...(retryAfter === undefined ? {} : { delayMs: retryAfter }) }
}

export function classifyResponse(response: StoreResponse, now: number): PollOutcome {
  const { status } = response
  if (status === 200) return answered(response.body, 'the store')
  if (status === 404) return { kind: 'retry', reason: 'not in the store yet (404)', backoff: false, notFound: true }
  if (status === 401) {
    return {
      kind: 'fail',
      error: new NoVerdictError(
        'TOKEN_REJECTED',
        'the store rejected the token (401 Unauthorized): check that secret metadata-store-access-token (key accessToken) holds a current token of the metadata-store-read-client service account (config/view-cluster/metadata-store-read-client.yaml)',
      ),
    }
  }
  if (status === 403) {
    return {
      kind: 'fail',
      error: new NoVerdictError(
        'TOKEN_REJECTED',
        `the token may not read images (403 Forbidden: ${firstLine(response.body)}): bind its service account to the metadata-store-read-only ClusterRole (config/view-cluster/metadata-store-read-client.yaml does), or, on a store without that role, use metadata-store-read-write-client`,
      ),
    }
  }
  if (status === 429 || status >= 500) return busy(`the store answered ${status}${response.body.trim() ? `: ${firstLine(response.body, 80)}` : ''}`, response.headers, now)
  const location = response.headers.location ? ` to ${String(response.headers.location)}` : ''
  return {
    kind: 'fail',
    error: new NoVerdictError('STORE_ERROR', `the store answered ${status}${location}${response.body.trim() ? `: ${firstLine(response.body)}` : ''}: check --url points at the Metadata Store (METADATA_STORE_URL)`),
  }
}

/**
 * The secret (namespace metadata-store) whose ca.crt signs the host the gate talks to: the store's own
 * certificate (app-tls-cert) for the in-cluster service, the ingress's (ingress-cert) for anything else.
 */
export function caSecretFor(url: URL): 'app-tls-cert' | 'ingress-cert' {
  return /\.svc(?:\.cluster\.local)?$/.test(url.hostname) || !url.hostname.includes('.') ? 'app-tls-cert' : 'ingress-cert'
}

/**
 * What a failed request means. TLS failures end the run; a host that does not resolve (ENOTFOUND) is
 * retried MAX_DNS_FAILURES times in a row, to ride out a restart of the cluster DNS, then ends it naming
 * the host; other network errors are retried until the deadline.
 */
/** Who the gate talks to, for the messages of classifyError; `hints` are absent for the store. */
export interface Peer {
  readonly baseUrl: URL
  readonly proxied: boolean
  readonly ca?: { readonly origin: string }
  readonly hints?: PeerHints
}

/** How messages name a peer other than the store, and what to check when TLS or DNS fails. */
export interface PeerHints {
  readonly name: string
  readonly tls: string
  readonly dns: string
}

export function classifyError(error: unknown, peer: Peer): Exclude<PollOutcome, { kind: 'done' }> {
  if (error instanceof NoVerdictError) return { kind: 'fail', error }
  const codes = errorField(error, 'code')
  const tlsCode = codes.find((code) => TLS_ERROR_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))
  const host = peer.baseUrl.hostname
  if (tlsCode) {
    const secret = caSecretFor(peer.baseUrl)
    const hint =
      peer.hints?.tls ??
      (peer.ca
        ? `either ${peer.ca.origin} is not the CA for ${host} (for this URL it is secret ${secret} in namespace metadata-store, key ca.crt, copied into secret metadata-store-cert, key caCrt), or ${host} is not in the store's certificate`
        : `no CA was given and ${DEFAULT_CA_PATH} does not exist: in the Task, create secret metadata-store-cert (key caCrt) in this namespace from secret ${secret} in namespace metadata-store, key ca.crt (the Task mounts it there); elsewhere pass the store's CA with --ca-cert or METADATA_STORE_CA_CERT`)
    // Node's own advice (--use-system-ca) does not apply: the image has no system store to add, and the CA is the fix.
    const said = String((error as Error).message).replace(/[.;,]?\s*[^.;]*--use-system-ca[^.;]*[.;]?/gi, '').trim()
    return { kind: 'fail', error: new NoVerdictError('TLS', `TLS with ${peer.hints?.name ?? 'the store'} failed (${tlsCode}: ${said}): ${hint}`, { cause: error }) }
  }
  if (codes.includes('ENOTFOUND')) {
    const unresolved = errorField(error, 'hostname')[0] ?? host
    const check = peer.proxied ? `check HTTPS_PROXY (the proxy resolves ${host}) and ${peer.hints?.dns ?? '--url'}` : `check ${peer.hints?.dns ?? '--url (METADATA_STORE_URL)'} and, in a pod, the cluster DNS`
    return {
      kind: 'retry',
      reason: `cannot resolve host ${unresolved} (ENOTFOUND)`,
      backoff: true,
      giveUp: { after: MAX_DNS_FAILURES, error: new NoVerdictError('DNS', `host ${unresolved} does not resolve (ENOTFOUND, ${MAX_DNS_FAILURES} tries in a row): ${check}`, { cause: error }) },
    }
  }
  const connection = codes.find((code) => CONNECTION_FAILURES[code])
  if (connection) {
    // Nothing answers at all: no scan or observer is to blame; say what failed, and keep trying until the deadline.
    const port = peer.baseUrl.port || '443'
    return {
      kind: 'retry',
      reason: `connection to ${host}:${port} ${CONNECTION_FAILURES[connection]} (${connection})`,
      backoff: true,
      hint: peer.hints
        ? `Nothing answered at ${host}:${port}: check that ${peer.hints.name} runs there and that no network policy blocks this namespace`
        : `Nothing answered at ${host}:${port}: check the store's Service (kubectl get svc -n metadata-store), the Task's metadata-store-url param (workload param policy_metadata_store_url) and any NetworkPolicy between this namespace and the store's`,
    }
  }
  const code = codes[0] ?? (error as Error)?.name ?? 'error'
  return { kind: 'retry', reason: `request failed (${code}: ${(error as Error)?.message ?? String(error)})`, backoff: true }
}

/** Network errors that mean nothing answered at the address, as a log line says them. */
const CONNECTION_FAILURES: Readonly<Record<string, string>> = { ECONNREFUSED: 'refused', ECONNRESET: 'reset', EHOSTUNREACH: 'unreachable (no route to the host)', ENETUNREACH: 'unreachable (no route to the network)', UND_ERR_CONNECT_TIMEOUT: 'timed out' }

export interface WaitDeps {
  readonly fetch: (url: URL, signal: AbortSignal) => Promise<StoreResponse>
  readonly now: () => number
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>
  readonly random: () => number
  readonly progress: (line: string) => void
  /** Aborts on SIGINT or SIGTERM. */
  readonly signal: AbortSignal
  /** Every request of one run shares the --timeout that started then. */
  readonly started: number
  /** Runs synchronous work (parsing a body) so that a signal still ends the process at once. */
  readonly blocking: <T>(work: () => T) => T
}

export type Acceptance<T> = { readonly ready: true; readonly value: T } | { readonly ready: false; readonly reason: string }

/** One resource to poll: `accept` judges a 200's JSON; a 404 means "not yet" or, for optional endpoints, "absent". */
export interface Poll<T> {
  readonly url: URL
  /** For messages: "sha256:… in the store". */
  readonly what: string
  readonly onNotFound: 'wait' | 'absent'
  readonly accept: (document: unknown) => Acceptance<T>
  /** Says more about a "not yet" (what the scan is doing); never throws, undefined when it has nothing. */
  readonly explain?: ((signal: AbortSignal) => Promise<string | undefined>) | undefined
}

/** One try's result: the value, or what the answer means for the wait. */
export type Step<T> = { readonly kind: 'accepted'; readonly value: T } | Exclude<PollOutcome, { kind: 'done' }>

/** Something to try until it succeeds, fails for good, or the run's deadline passes. */
export interface Attempts<T> {
  /** For messages: "sha256:… in the store". */
  readonly what: string
  /** Said after "timed out": where to look. */
  readonly timeoutHint: string
  /** A 404 means "not yet" (wait) or, for optional things, "absent" (undefined). */
  readonly onNotFound: 'wait' | 'absent'
  readonly attempt: (signal: AbortSignal) => Promise<Step<T>>
  /** For a request that waits on purpose (a watch): what it last heard, said instead of "no answer" when time runs out. */
  readonly heard?: () => string
}

/** Who answers and how long the run may wait for it. */
export type Timing = Pick<StoreSettings, 'timeoutMs' | 'pollIntervalMs'>

/**
 * Tries until `attempt` is accepted, fails, or the run's deadline passes (NoVerdictError TIMEOUT). Not-yet
 * answers wait the poll interval; 429, 5xx and network errors back off (retryDelay), never past the deadline.
 */
export async function retryUntil<T>(attempts: Attempts<T>, peer: Peer & Timing, deps: Omit<WaitDeps, 'fetch'>): Promise<T | undefined> {
  const deadline = deps.started + peer.timeoutMs
  let lastReason = 'no answer yet'
  let lastHint: string | undefined
  let failures = 0
  let repeated = 0
  for (let attempt = 1; ; attempt++) {
    const remaining = deadline - deps.now()
    if (remaining <= 0) {
      throw new NoVerdictError('TIMEOUT', `timed out after ${formatDuration(peer.timeoutMs)} waiting for ${attempts.what} (${attempt - 1} requests; last: ${lastReason}). ${lastHint ?? attempts.timeoutHint}`)
    }
    const requestMs = Math.min(REQUEST_TIMEOUT_MS, remaining)
    const requestSignal = AbortSignal.any([deps.signal, AbortSignal.timeout(timerMs(requestMs))])
    let step: Step<T>
    try {
      step = await attempts.attempt(requestSignal)
    } catch (error) {
      if (deps.signal.aborted) throw deps.signal.reason
      step = requestSignal.aborted ? { kind: 'retry', reason: attempts.heard?.() || `no answer within ${formatDuration(requestMs)}`, backoff: true } : classifyError(error, peer)
    }
    if (step.kind === 'accepted') {
      if (attempt > 1 || attempts.onNotFound === 'wait') deps.progress(`found ${attempts.what}; attempt ${attempt}, ${formatDuration(deps.now() - deps.started)} elapsed`)
      return step.value
    }
    if (step.kind === 'fail') throw step.error
    if (step.notFound && attempts.onNotFound === 'absent') return undefined
    repeated = step.giveUp ? repeated + 1 : 0
    if (step.giveUp && repeated >= step.giveUp.after) throw step.giveUp.error
    lastReason = step.reason
    lastHint = step.hint
    failures = step.backoff ? failures + 1 : 0
    const left = Math.max(0, deadline - deps.now())
    const wait = Math.min(retryDelay(step, failures, peer.pollIntervalMs, deps.random()), left)
    deps.progress(`${step.reason}; attempt ${attempt}, ${formatDuration(deps.now() - deps.started)} elapsed, ${formatDuration(left)} left; next try in ${formatDuration(wait)}`)
    await deps.sleep(timerMs(wait), deps.signal)
  }
}

/** Polls one store resource until `accept` is satisfied (see retryUntil). */
export async function pollStore<T>(poll: Poll<T>, store: StoreSettings, deps: WaitDeps): Promise<T | undefined> {
  return retryUntil(
    {
      what: poll.what,
      timeoutHint: 'If the scan ran, check the AMR observer (see README, troubleshooting)',
      onNotFound: poll.onNotFound,
      attempt: async (signal) => {
        const response = await deps.fetch(poll.url, signal)
        const step = deps.blocking((): Step<T> => {
          const classified = classifyResponse(response, deps.now())
          if (classified.kind !== 'done') return classified
          const accepted = poll.accept(classified.document)
          return accepted.ready ? { kind: 'accepted', value: accepted.value } : { kind: 'retry', reason: accepted.reason, backoff: false }
        })
        const more = step.kind === 'retry' && step.notFound && poll.onNotFound === 'wait' ? await poll.explain?.(signal) : undefined
        return more && step.kind === 'retry' ? { ...step, reason: `${step.reason}; ${more}` } : step
      },
    },
    store,
    deps,
  )
}

const ready = <T>(value: T): Acceptance<T> => ({ ready: true, value })

/** The Image document of the digest, once the store has it. */
export async function waitForImageReport(store: StoreSettings, digest: string, deps: WaitDeps, explain?: Poll<unknown>['explain']): Promise<unknown> {
  return pollStore({ url: imageEndpoint(store.baseUrl, digest), what: `${digest} in the store`, onNotFound: 'wait', accept: ready, explain }, store, deps)
}

/** Waits until the store holds a scan report for the digest generated at or after `newerThan`. */
export async function waitForFreshReport(store: StoreSettings, digest: string, newerThan: number, deps: WaitDeps): Promise<void> {
  const since = new Date(newerThan).toISOString()
  await pollStore(
    {
      url: storeEndpoint(store.baseUrl, '/api/v1/reports', { digest, ordering: 'DESC', page_size: '20' }),
      what: `a scan report of ${digest} generated at or after ${since}`,
      onNotFound: 'wait',
      accept: (document) => {
        const newest = newestReportFrom(document)
        if (newest !== undefined && newest >= newerThan) return ready(newest)
        return { ready: false, reason: newest === undefined ? 'no scan report yet' : `the newest scan report was generated ${new Date(newest).toISOString()}, before ${since}` }
      },
    },
    store,
    deps,
  )
}

/** Every triage decision the store holds for the digest, page by page; undefined when it has no triage endpoint. */
export async function fetchTriage(store: StoreSettings, digest: string, deps: WaitDeps): Promise<TriageDecision[] | undefined> {
  const decisions: TriageDecision[] = []
  for (let page = 1; page <= MAX_TRIAGE_PAGES; page++) {
    const url = storeEndpoint(store.baseUrl, '/api/v1/triage', { digest, page: String(page), page_size: String(TRIAGE_PAGE_SIZE) })
    const result = await pollStore({ url, what: `triage page ${page} of ${digest}`, onNotFound: 'absent', accept: (document) => ready(triagePageFrom(document)) }, store, deps)
    if (!result) return page === 1 ? undefined : decisions
    decisions.push(...result.decisions)
    if (page >= result.lastPage || result.records === 0) return decisions
  }
  return decisions
}

// ---------------------------------------------------------------------------------------------
// Pure functions: what a body costs to evaluate

/** Heap bytes JSON.parse spends per byte of text beyond the text itself: an object or a list, a separator's slot. */
const PARSE_COST = new Uint8Array(256)
PARSE_COST[0x7b] = PARSE_COST[0x5b] = 96 // { and [
PARSE_COST[0x2c] = 48 // ,
/** The most any body can cost per byte: the text four times over, and `[],` repeated (96 + 48 in 3 bytes). */
const WORST_COST_PER_BYTE = 4 + 48

/**
 * About how many bytes reading, parsing and evaluating a JSON body takes at its peak: the body as bytes and
 * as a string (two bytes a character at worst), the parsed strings, and PARSE_COST for each structural byte
 * (counted inside strings too: an over-estimate, on the safe side, at a third of the cost of tracking them;
 * a table look-up per byte, about 5 ms per 10 MB). Calibrated by `npm run bench` in a container with the
 * Task's memory limit: every body shape it estimates to fit was evaluated there, and `[{},{},...]` and its
 * kin are refused before they can abort the process.
 */
export function evaluationCost(body: Uint8Array): number {
  let structure = 0
  for (let i = 0; i < body.length; i++) structure += PARSE_COST[body[i]!]!
  return 4 * body.length + structure
}

/** Of what memory is left, the share a body may take: the garbage collector needs room to work in. */
const MEMORY_HEADROOM = 0.8

/** A body that would not fit in the memory left is refused (exit 3) before it is parsed, never an out-of-memory abort. */
export function checkFits(body: Uint8Array, available: number, what: string): void {
  const budget = available * MEMORY_HEADROOM
  if (body.length * WORST_COST_PER_BYTE <= budget) return // fits at its worst shape: no need to look
  const needed = evaluationCost(body)
  if (needed <= budget) return
  const mib = (value: number) => `${Math.ceil(value / 2 ** 20)} MiB`
  throw new NoVerdictError(
    'BODY_TOO_LARGE',
    `${what} (${mib(body.length)}) needs about ${mib(needed)} to evaluate, more than the ${mib(available)} this process may still use: raise the step's memory limit (README, Memory)`,
  )
}

// ---------------------------------------------------------------------------------------------
// I/O at the edges

/**
 * undici and yaml are CommonJS: the chunks esbuild splits them into (build.mjs), like Node itself, export
 * their module.exports as the default export only. Unbundled (the tests), the names are there too.
 */
async function importCommonJs<T>(module: Promise<T>): Promise<T> {
  const loaded = (await module) as T & { default?: T }
  return loaded.default ?? loaded
}

/** Rejects with the signal's reason as soon as it aborts, whether or not `work` notices (undici does not abort a proxy CONNECT that hangs). */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** What the V8 heap and the container's memory limit still allow, in bytes. */
function availableMemory(): number {
  const heap = getHeapStatistics()
  const limit = process.constrainedMemory()
  const containerLeft = limit > 0 && limit < 2 ** 50 ? limit - process.memoryUsage.rss() : Number.POSITIVE_INFINITY
  return Math.min(heap.heap_size_limit - heap.used_heap_size, containerLeft)
}

export interface BodyLimits {
  readonly maxBytes: number
  readonly tooLarge: () => Error
  /** For JSON bodies: refuse one that would not fit in memory, naming it. */
  readonly json?: { readonly what: string; readonly available: () => number }
}

/** Reads a stream to the end, giving up past `maxBytes`. */
async function readBytes(body: AsyncIterable<Buffer | string>, limits: BodyLimits): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += buffer.length
    if (size > limits.maxBytes) throw limits.tooLarge()
    chunks.push(buffer)
  }
  return Buffer.concat(chunks, size)
}

/** Reads a stream to the end, giving up past `maxBytes` (or what memory allows), and decodes it as UTF-8. */
async function readCapped(body: AsyncIterable<Buffer | string>, limits: BodyLimits): Promise<string> {
  return decodeBody(await readBytes(body, limits), limits)
}

/** The body as text, once a JSON body is known to fit in memory. */
function decodeBody(buffer: Buffer, limits: BodyLimits): string {
  if (limits.json) checkFits(buffer, limits.json.available(), limits.json.what)
  return buffer.toString('utf8')
}

const bodyTooLarge = (what: string, limit: number) => () =>
  new NoVerdictError('BODY_TOO_LARGE', `${what} is larger than the --max-body-size of ${limit} bytes, far above a real image report: raise it (and the step's memory) if this image really has that many findings`)

/** One answer, its body as bytes: a JSON API's or a registry's. */
export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: Buffer
}

/** Where the gate connects: the CA to trust besides the default roots, and whether a proxy variable is set. */
export interface Endpoint {
  readonly ca?: { readonly pem: string; readonly origin: string }
  readonly proxied: boolean
}

/** What the gate asks the store, the Kubernetes API and registries through: one connection pool per endpoint. */
export interface HttpClient {
  /** One GET, its body read within `limits`; redirects are not followed (the caller decides where credentials go). */
  readonly get: (url: URL, headers: Readonly<Record<string, string>>, signal: AbortSignal, limits: BodyLimits) => Promise<RawResponse>
  /**
   * One GET whose 200 body is a stream of lines (a Kubernetes watch): each line goes to `onLine` as it
   * arrives, until it returns false, the server ends the stream, or the signal aborts. A line longer than
   * `limits.maxBytes` ends it with limits.tooLarge(). Another status comes back with its body, as from get.
   */
  readonly lines: (url: URL, headers: Readonly<Record<string, string>>, signal: AbortSignal, limits: BodyLimits, onLine: (line: string) => boolean) => Promise<RawResponse>
  readonly close: () => Promise<void>
}

/** An undici client: the endpoint's CA besides the default roots, through a proxy if the env names one, every wait bound by the caller's signal. */
async function createHttpClient(endpoint: Endpoint): Promise<HttpClient> {
  // Loaded here, not at the top: --help, --input and usage errors never pay for TLS or undici.
  const [{ Agent, EnvHttpProxyAgent, request }, { getCACertificates }] = await Promise.all([importCommonJs(import('undici')), import('node:tls')])
  const tls = endpoint.ca ? { ca: [...getCACertificates('default'), endpoint.ca.pem] } : {}
  const timeouts = { headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS }
  const connect = { ...tls, timeout: CONNECT_TIMEOUT_MS }
  const dispatcher = endpoint.proxied ? new EnvHttpProxyAgent({ ...timeouts, connect, requestTls: tls }) : new Agent({ ...timeouts, connect })
  return {
    get(url, headers, signal, limits) {
      const exchange = async (): Promise<RawResponse> => {
        const response = await request(url, { dispatcher, method: 'GET', headers, signal })
        return { status: response.statusCode, headers: response.headers, body: await readBytes(response.body, limits) }
      }
      return abortable(exchange(), signal)
    },
    lines(url, headers, signal, limits, onLine) {
      const exchange = async (): Promise<RawResponse> => {
        const response = await request(url, { dispatcher, method: 'GET', headers, signal })
        if (response.statusCode !== 200) return { status: response.statusCode, headers: response.headers, body: await readBytes(response.body, limits) }
        const decoder = new TextDecoder()
        let pending = ''
        try {
          for await (const chunk of response.body) {
            pending += decoder.decode(chunk as Buffer, { stream: true })
            for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
              const line = pending.slice(0, end)
              pending = pending.slice(end + 1)
              if (line.trim() && !onLine(line)) return { status: 200, headers: response.headers, body: Buffer.alloc(0) }
            }
            if (pending.length > limits.maxBytes) throw limits.tooLarge()
          }
          pending += decoder.decode()
          if (pending.trim()) onLine(pending)
          return { status: 200, headers: response.headers, body: Buffer.alloc(0) }
        } finally {
          response.body.destroy()
        }
      }
      return abortable(exchange(), signal)
    },
    /** Destroyed, not closed: a request still hanging (a proxy that never answers) must not hold the process. */
    close: () => dispatcher.destroy(),
  }
}

/**
 * GET for a bearer-token JSON API (the store, the Kubernetes API). The body and headers come back redacted:
 * a server or ingress that echoes the Authorization header cannot put the token in any output.
 */
function bearerFetch(client: HttpClient, api: Pick<StoreSettings, 'token'>, maxBodyBytes: number): WaitDeps['fetch'] {
  const headers = bearerHeaders(api.token)
  const limits: BodyLimits = { maxBytes: maxBodyBytes, tooLarge: bodyTooLarge('the answer', maxBodyBytes), json: { what: 'the answer', available: availableMemory } }
  return async (url, signal) => redactedAnswer(await client.get(url, headers, signal, limits), api.token, limits)
}

const bearerHeaders = (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json' })

/** An answer as text, its body and Location redacted of the token. */
function redactedAnswer(response: RawResponse, token: string, limits: BodyLimits): StoreResponse {
  const location = response.headers.location
  return {
    status: response.status,
    headers: { ...response.headers, ...(location ? { location: redact(String(location), [token]) } : {}) },
    body: redact(decodeBody(response.body, limits), [token]),
  }
}

/**
 * A file the user named, read to the end within `maxBytes` and the run's deadline: a FIFO, /dev/zero or a
 * stalled writer cannot hang the gate or flood its memory. Unreadable is a usage error naming `what`; the
 * path is left out where it may be a secret pasted in the wrong place.
 */
async function readNamedFile(path: string, what: string, options: ReadOptions): Promise<string> {
  let fd: number | undefined
  let stream: (NodeJS.ReadableStream & { destroy(): void }) | undefined
  try {
    // Without blocking: a FIFO that nobody writes to would otherwise hold a libuv thread in open(2), and the
    // process could not even exit. FIFOs and sockets are then read as pipes (epoll), never by a thread.
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
    const stat = fstatSync(fd)
    if (stat.isFile()) {
      // A regular file cannot hang: its size is checked first, then it is read in one call.
      if (stat.size > options.limits.maxBytes) throw options.limits.tooLarge()
      return decodeBody(readFileSync(fd), options.limits)
    }
    if (stat.isFIFO() || stat.isSocket()) {
      const { Socket } = await import('node:net')
      stream = new Socket({ fd, readable: true, writable: false })
    } else {
      stream = createReadStream('', { fd, highWaterMark: 1 << 20 }) // a device such as /dev/zero: read within the cap
    }
    fd = undefined // the stream owns it now
    return await abortable(readCapped(stream, options.limits), options.signal)
  } catch (error) {
    if (options.signal.aborted || error instanceof NoVerdictError || error instanceof UsageError) throw options.signal.aborted ? options.signal.reason : error
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new UsageError('FILE', `cannot read ${what}${options.showPath === false ? '' : ` ${path}`} (${reason}): check the path and that the file is mounted`)
  } finally {
    stream?.destroy()
    if (fd !== undefined) closeSync(fd)
  }
}

const configFileLimits = (what: string): BodyLimits => ({
  maxBytes: MAX_CONFIG_FILE_BYTES,
  tooLarge: () => new UsageError('FILE', `${what} is larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB: that is not a ${what.replace(/^the /, '')}`),
})

/** The token and CA files, read and checked: the store is then ready to ask. */
async function loadStoreSettings(source: StoreSource, timeoutMs: number, signal: AbortSignal, files: FileSystem): Promise<StoreSettings> {
  const token =
    'value' in source.token
      ? source.token.value
      : checkToken(await files.read(source.token.file, `the token file named by ${source.token.origin}`, { signal, limits: configFileLimits('the token file'), showPath: false }), source.token.origin)
  let ca: StoreSettings['ca']
  if (source.ca && 'pem' in source.ca) ca = { pem: checkCa(source.ca.pem, source.ca.origin), origin: source.ca.origin }
  else if (source.ca) ca = { pem: checkCa(await files.read(source.ca.file, 'the CA file', { signal, limits: configFileLimits('the CA file') }), source.ca.file), origin: source.ca.file }
  return { baseUrl: source.baseUrl, token, ...(ca ? { ca } : {}), timeoutMs, pollIntervalMs: source.pollIntervalMs, proxied: source.proxied }
}

/** The --exemptions file, parsed and checked; a bad file is a usage error naming the entry and field. */
async function loadExemptions(path: string, secrets: readonly string[], signal: AbortSignal, io: Io): Promise<Exemption[]> {
  const source = redact(await io.files.read(path, '--exemptions', { signal, limits: configFileLimits('--exemptions') }), secrets)
  const { parseDocument } = await importCommonJs(import('yaml'))
  return io.blocking(() => {
    const document = parseDocument(source, { uniqueKeys: true })
    const [problem] = document.errors
    if (problem) throw new UsageError('EXEMPTIONS', `${path}: not valid YAML at line ${problem.linePos?.[0].line ?? '?'}: ${problem.message.split('\n')[0]}`)
    let content: unknown
    try {
      // yaml refuses documents whose aliases expand past maxAliasCount (a "billion laughs" file).
      content = document.toJS({ maxAliasCount: 100 })
    } catch (error) {
      throw new UsageError('EXEMPTIONS', `${path}: cannot be read as exemptions (${(error as Error).message.split('\n')[0]})`)
    }
    return exemptionsFrom(content, path)
  })
}

/**
 * A saved document (--input, --baseline-input) from a file or stdin, within --max-body-size, the memory left
 * and the deadline, parsed: a signal still ends the parse at once.
 */
async function readSavedDocument(option: '--input' | '--baseline-input', path: string, config: Config, run: Run, output: Output, io: Io): Promise<unknown> {
  const what = `${option} ${path}`
  run.phase = `reading ${what}`
  const limits: BodyLimits = { maxBytes: config.maxBodyBytes, tooLarge: bodyTooLarge(what, config.maxBodyBytes), json: { what, available: io.availableMemory } }
  const body = path === '-' ? await abortable(readCapped(io.stdin as AsyncIterable<Buffer>, limits), run.deadline) : await io.files.read(path, option, { signal: run.deadline, limits })
  if (body.length > LARGE_BODY_BYTES) output.say(`parsing ${Math.round(body.length / 2 ** 20)} MiB from ${option}`)
  return io.blocking(() => parseJsonBody(body, what))
}

/** The registry's credentials (from the Docker config) and CA, read and checked. */
export interface RegistryAccess extends Endpoint, Timing {
  readonly dockerConfig?: { readonly document: unknown; readonly origin: string }
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** A scan result is one imgpkg layer, or a few artifact files: more is not a scan result, and each costs a request. */
const MAX_LAYERS = 64
const MAX_REDIRECTS = 5
/** Hashing and unpacking, loaded with the first scan result: no other run pays for them at start-up. */
interface Codecs {
  readonly sha256: (bytes: Buffer) => string
  readonly gunzip: (bytes: Buffer, maxOutputLength: number) => Buffer
  readonly zstd: (bytes: Buffer, maxOutputLength: number) => Buffer
}

async function loadCodecs(): Promise<Codecs> {
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
export function classifyRegistryResponse(response: RawResponse, what: string, ref: OciRef, credentials: string | undefined, now: number, quote: (text: string) => string): Step<RawResponse> {
  const { status } = response
  if (status === 200) return { kind: 'accepted', value: response }
  const text = quote(response.body.subarray(0, 4096).toString('utf8'))
  let detail = firstLine(text, 120)
  try {
    const error = (parseJson(text) as { errors?: Array<{ code?: unknown; message?: unknown }> }).errors?.[0]
    if (error) detail = `${String(error.code)}: ${firstLine(String(error.message), 120)}`
  } catch {}
  const said = `${ref.registry} answered ${status}${detail ? ` (${detail})` : ''}`
  if (status === 401 || status === 403) {
    const fix = credentials
      ? `check the credentials for ${ref.registry} in ${credentials} and that they may pull ${ref.repository}`
      : `give credentials for ${ref.registry} with --registry-config (a .dockerconfigjson, as secret registry-credentials holds) or DOCKER_CONFIG`
    return { kind: 'fail', error: new NoVerdictError('REGISTRY_REJECTED', `${said} for ${what}: ${fix}`) }
  }
  if (status === 429 || status >= 500) return busy(said, response.headers, now)
  const fix = status === 404 ? `check --scan-result: ${ref.reference} is not there (scan results are kept as long as the registry keeps them)` : 'check --scan-result names a registry'
  return { kind: 'fail', error: new NoVerdictError('REGISTRY_ERROR', `${said} for ${what}: ${fix}`) }
}

/** The digest of `bytes` must be what the reference or manifest promised; anything else was changed on the way or at rest. */
function verifyDigest(codecs: Codecs, bytes: Buffer, expected: string, what: string): void {
  const actual = codecs.sha256(bytes)
  if (actual !== expected) throw new NoVerdictError('DIGEST_MISMATCH', `${what} has digest ${actual}, not ${expected}: the registry or something between served other bytes than promised`)
}

/**
 * A layer's files: a tar (plain, gzip or zstd, told by its first bytes), or one file named by its title.
 * `budget` is what the whole bundle may still unpack to (--max-body-size less the layers before): many small
 * layers that each unpack to the cap cannot add up past it.
 */
function filesOfLayer(codecs: Codecs, blob: Buffer, layer: Descriptor, budget: number, maxBytes: number): { files: BundleFile[]; bytes: number } {
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
  const isTar = layer.mediaType.includes('tar') || (tar.length >= 512 && tar.subarray(257, 262).toString('latin1') === 'ustar')
  return { files: isTar ? filesOfTar(tar, what) : [{ name: layer.title ?? layer.digest, content: tar }], bytes: tar.length }
}

/**
 * What one file of a scan's results is: a CycloneDX document to judge, or something that holds no
 * vulnerability to judge, with the reason (imgpkg's metadata, an SPDX SBOM, XML named as such). Anything else
 * ends the run (exit 3) naming the file: JSON that does not parse (truncated), a CycloneDX version the gate
 * does not read, JSON of another kind, or a file of no format the gate knows. A byte order mark is tolerated.
 */
export function classifyScanFile(file: BundleFile, what: string, available: number): { readonly bom: Record<string, unknown> } | { readonly setAside: string } {
  if (file.name.startsWith('.imgpkg/')) return { setAside: "imgpkg's bundle metadata" }
  const fail = (problem: string) => new NoVerdictError('MALFORMED_RESPONSE', `${what} ${problem}: the gate cannot account for the vulnerabilities it may hold, so there is no verdict`)
  const head = file.content.subarray(0, 64).toString('utf8').replace(/^\ufeff/, '').trimStart()
  if (head.startsWith('<')) {
    if (/\.xml$/i.test(file.name)) return { setAside: 'XML, which the gate does not read (have the scanner write CycloneDX JSON: Trivy --format cyclonedx, Grype -o cyclonedx-json)' }
    throw fail('is XML not named .xml')
  }
  if (/^SPDXVersion:/.test(head)) return { setAside: 'an SPDX SBOM (tag-value): packages, no vulnerabilities' }
  if (!head.startsWith('{') && !head.startsWith('[')) throw fail(`is neither CycloneDX JSON nor SPDX nor XML${/\.json$/i.test(file.name) ? ' (named .json, but not JSON)' : ''}`)
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
  if (isObject(document) && typeof document.spdxVersion === 'string') return { setAside: 'an SPDX SBOM: packages, no vulnerabilities' }
  throw fail('is JSON, but neither CycloneDX nor SPDX')
}

/**
 * The CycloneDX files among a bundle's files, judged together, and the files set aside with their reasons.
 * None is no verdict (exit 3), saying what the bundle holds: the scan wrote another format, or nothing.
 */
function scanFilesOf(files: readonly BundleFile[], ref: OciRef, available: () => number): ScanFiles {
  const scans: Array<{ name: string; bom: Record<string, unknown> }> = []
  const setAside: SetAside[] = []
  for (const file of files) {
    const kind = classifyScanFile(file, `${file.name} in ${ref.reference}`, available())
    if ('bom' in kind) scans.push({ name: file.name, bom: kind.bom })
    else setAside.push({ what: file.name, reason: kind.setAside })
  }
  if (scans.length) return new ScanFiles(scans, setAside)
  const others = setAside.filter((aside) => !aside.what.startsWith('.imgpkg/')).map((aside) => aside.what)
  const held = others.length ? `only ${others.slice(0, 10).join(', ')}${others.length > 10 ? ` and ${others.length - 10} more` : ''}` : 'no files'
  const hint = others.some((name) => /\.xml$/i.test(name)) ? ': have the scanner write CycloneDX JSON (Trivy --format cyclonedx, Grype -o cyclonedx-json); XML is not read' : ': the scan wrote no CycloneDX JSON (Trivy --format cyclonedx, Grype -o cyclonedx-json)'
  throw new NoVerdictError('NO_SCAN_FILE', `${ref.reference} holds ${held}${hint}`)
}

/**
 * Reads a scan's published results (an imgpkg bundle, or any OCI artifact) through the registry API:
 * the manifest (an index resolved to its one image), each layer verified against its digest and size,
 * unpacked within --max-body-size, and its CycloneDX JSON files. Anonymous first; a 401's challenge says
 * whether to send Basic credentials or fetch a bearer token for them. Credentials and tokens join `secrets`.
 */
export async function readScanResult(ref: OciRef, access: RegistryAccess, client: HttpClient, deps: Omit<WaitDeps, 'fetch'>, maxBytes: number, secrets: string[]): Promise<ScanFiles> {
  const codecs = await loadCodecs()
  const credentials = access.dockerConfig ? credentialsFor(access.dockerConfig.document, ref.registry, access.dockerConfig.origin) : undefined
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
  /** What may be quoted of the registry's or the token service's words: redacted first; nothing at all while a secret too short to redact is held. */
  const quote = (text: string) => (held.some((secret) => secret.length < MIN_TOKEN_LENGTH) ? '' : redact(text, held))
  const base = new URL(`https://${ref.registry}`)
  const peer: Peer & Timing = {
    ...access,
    baseUrl: base,
    hints: {
      name: `the registry ${ref.registry}`,
      tls: access.ca ? `${access.ca.origin} is not the CA of ${ref.registry}, or ${ref.registry} is not in its certificate` : `in the Task, put the registry's CA in ConfigMap amr-policy-gate-registry-ca (key ca.crt) and set param registry-ca-file to /etc/amr-policy-gate-registry-ca/ca.crt; elsewhere give it with --registry-ca-cert (POLICY_REGISTRY_CA_CERT)`,
      dns: '--scan-result',
    },
  }
  let authorization: string | undefined

  /** A bearer token for the challenge's realm, service and scope; Basic credentials go to the realm only over https. */
  async function authenticate(challenge: NonNullable<ReturnType<typeof parseChallenge>>, signal: AbortSignal): Promise<string | undefined> {
    const basic = credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined
    if (challenge.scheme === 'basic') return basic
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined
    let realm: URL
    try {
      realm = new URL(challenge.params.realm)
    } catch {
      throw new NoVerdictError('REGISTRY_ERROR', `${ref.registry} names a token service that is not a URL: ${firstLine(quote(challenge.params.realm), 120)}`)
    }
    if (realm.protocol !== 'https:') throw new NoVerdictError('REGISTRY_ERROR', `${ref.registry} sends the gate to a token service over ${realm.protocol.slice(0, -1)} (${realm.origin}): credentials only go over https`)
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.set('scope', challenge.params.scope ?? `repository:${ref.repository}:pull`)
    const limits: BodyLimits = { maxBytes: MAX_CONFIG_FILE_BYTES, tooLarge: bodyTooLarge(`the token from ${realm.origin}`, MAX_CONFIG_FILE_BYTES) }
    const response = await client.get(realm, basic ? { authorization: basic, accept: 'application/json' } : { accept: 'application/json' }, signal, limits)
    if (response.status === 429 || response.status >= 500) throw Object.assign(new Error(`the token service ${realm.origin} answered ${response.status}`), { code: `HTTP_${response.status}` })
    if (response.status !== 200) {
      const fix = credentialsOrigin ? `check the credentials for ${ref.registry} in ${credentialsOrigin}` : `give credentials for ${ref.registry} with --registry-config or DOCKER_CONFIG`
      throw new NoVerdictError('REGISTRY_REJECTED', `the token service ${realm.origin} of ${ref.registry} answered ${response.status}: ${fix}`)
    }
    const answer = parseJsonBody(response.body.toString('utf8'), `the token service ${realm.origin} answered 200 with a body that`, quote)
    const token = isObject(answer) ? (typeof answer.token === 'string' && answer.token) || (typeof answer.access_token === 'string' && answer.access_token) : undefined
    if (!token) throw new NoVerdictError('MALFORMED_RESPONSE', `the token service ${realm.origin} answered without a token`)
    hold(token)
    return `Bearer ${token}`
  }

  /** One GET, authenticating on a 401 challenge and following redirects (credentials stay with the registry's origin). */
  async function exchange(path: string, accept: string, signal: AbortSignal, limits: BodyLimits): Promise<RawResponse> {
    let url = new URL(path, base)
    const send = (target: URL) => client.get(target, { accept, ...(authorization && target.origin === base.origin ? { authorization } : {}) }, signal, limits)
    let response = await send(url)
    if (response.status === 401 && url.origin === base.origin) {
      const challenge = parseChallenge(response.headers['www-authenticate'])
      const granted = challenge ? await authenticate(challenge, signal) : undefined
      if (granted && granted !== authorization) {
        authorization = granted
        response = await send(url)
      }
    }
    for (let hops = 0; response.status >= 300 && response.status < 400 && response.headers.location; hops++) {
      if (hops === MAX_REDIRECTS) throw new NoVerdictError('REGISTRY_ERROR', `${ref.registry} redirected more than ${MAX_REDIRECTS} times`)
      url = new URL(String(response.headers.location), url)
      if (url.protocol !== 'https:') throw new NoVerdictError('REGISTRY_ERROR', `${ref.registry} redirected to ${url.protocol.slice(0, -1)} (${quote(url.origin)}): only https is followed`)
      response = await send(url)
    }
    return response
  }

  const get = async (path: string, accept: string, what: string, limits: BodyLimits): Promise<RawResponse> =>
    (await retryUntil(
      {
        what,
        timeoutHint: `Check that ${ref.registry} is reachable from here`,
        // Never "not yet": a 404 ends the run (classifyRegistryResponse), and a read that went through at once is not worth a line.
        onNotFound: 'absent',
        attempt: async (signal) => classifyRegistryResponse(await exchange(path, accept, signal, limits), what, ref, credentialsOrigin, deps.now(), quote),
      },
      peer,
      deps,
    ))!

  const manifestLimits: BodyLimits = { maxBytes: MAX_MANIFEST_BYTES, tooLarge: bodyTooLarge('a manifest', MAX_MANIFEST_BYTES) }
  const readManifest = async (reference: string, expected: string | undefined, what: string) => {
    const response = await get(`/v2/${ref.repository}/manifests/${reference}`, ACCEPT_MANIFESTS, what, manifestLimits)
    const promised = expected ?? (typeof response.headers['docker-content-digest'] === 'string' ? response.headers['docker-content-digest'].trim().toLowerCase() : undefined)
    if (promised) verifyDigest(codecs, response.body, promised, what)
    const document = parseJsonBody(response.body.toString('utf8'), `${what} is a body that`, quote)
    return manifestFrom(document, String(response.headers['content-type'] ?? ''), what)
  }
  // An index is read whole: every image's files are judged together (one verdict), never its first image alone.
  const top = await readManifest(ref.tagOrDigest, ref.digest, `the manifest of ${ref.reference}`)
  const setAside: SetAside[] = []
  const images: Array<{ readonly prefix: string; readonly layers: readonly Descriptor[] }> = []
  if (top.kind === 'index') {
    if (top.entries.length > MAX_LAYERS) throw new NoVerdictError('MALFORMED_RESPONSE', `${ref.reference} is an index of ${top.entries.length} manifests; at most ${MAX_LAYERS} are read`)
    const named = top.entries.filter((entry) => entry.title !== 'attestation')
    for (const entry of top.entries) {
      if (entry.title === 'attestation') {
        setAside.push({ what: `manifest ${entry.digest}`, reason: 'an attestation manifest of the index (provenance or an SBOM of the build), not a scan' })
        continue
      }
      const what = `the manifest ${entry.digest} of ${ref.reference}`
      const manifest = await readManifest(entry.digest, entry.digest, what)
      if (manifest.kind === 'index') throw new NoVerdictError('MALFORMED_RESPONSE', `${ref.reference} is an index of an index, which a scan result never is`)
      images.push({ prefix: named.length > 1 ? `${entry.platform ?? entry.digest.slice(0, 19)}: ` : '', layers: manifest.entries })
    }
    if (!images.length) throw new NoVerdictError('NO_SCAN_FILE', `${ref.reference} is an index of no images`)
  } else images.push({ prefix: '', layers: top.entries })
  const layers = images.flatMap((image) => image.layers)
  if (layers.length > MAX_LAYERS) throw new NoVerdictError('MALFORMED_RESPONSE', `${ref.reference} has ${layers.length} layers; a scan result has a few (an imgpkg bundle one): at most ${MAX_LAYERS} are read`)
  const total = layers.reduce((sum, layer) => sum + layer.size, 0)
  if (total > maxBytes) throw bodyTooLarge(`${ref.reference} (${layers.length} layers, ${total} bytes)`, maxBytes)()
  const files: BundleFile[] = []
  let unpacked = 0
  for (const { prefix, layers: imageLayers } of images) {
    for (const layer of imageLayers) {
      const what = `layer ${layer.digest} of ${ref.reference}`
      const limits: BodyLimits = { maxBytes: layer.size, tooLarge: () => new NoVerdictError('DIGEST_MISMATCH', `${what} is larger than the ${layer.size} bytes its manifest says`) }
      const blob = await get(`/v2/${ref.repository}/blobs/${layer.digest}`, '*/*', what, limits)
      verifyDigest(codecs, blob.body, layer.digest, what)
      const layerFiles = deps.blocking(() => filesOfLayer(codecs, blob.body, layer, maxBytes - unpacked, maxBytes))
      unpacked += layerFiles.bytes
      for (const file of layerFiles.files) files.push(prefix ? { name: `${prefix}${file.name}`, content: file.content } : file)
    }
  }
  const scans = deps.blocking(() => scanFilesOf(files, ref, availableMemory))
  return setAside.length ? new ScanFiles(scans.files, [...setAside, ...scans.setAside]) : scans
}

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly stdin: NodeJS.ReadableStream
  readonly isTTY: boolean
  /** Aborts on SIGINT or SIGTERM, with an InterruptedError. */
  readonly signal: AbortSignal
  readonly now: () => number
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>
  readonly random: () => number
  /** Runs synchronous work (parsing, evaluating) so that SIGINT or SIGTERM still end the process at once. */
  readonly blocking: <T>(work: () => T) => T
  /** Bytes the V8 heap and the container's memory limit still allow. */
  readonly availableMemory: () => number
  readonly files: FileSystem
  /** A client for one endpoint (the store, the Kubernetes API, a registry): undici, or in tests anything that answers like them. */
  readonly connect: (endpoint: Endpoint) => Promise<HttpClient>
}

export interface ReadOptions {
  readonly signal: AbortSignal
  readonly limits: BodyLimits
  /** False where the path may be a secret pasted in the wrong place. */
  readonly showPath?: boolean
}

/** Every file the gate touches goes through here. */
export interface FileSystem extends Omit<Environment, 'env'> {
  /** A file the user named, read to the end within its limits and the deadline. */
  readonly read: (path: string, what: string, options: ReadOptions) => Promise<string>
  /** Writes a set of files all or none. */
  readonly writeAll: (files: ReadonlyArray<readonly [path: string, content: string]>) => void
  readonly remove: (path: string) => void
}

/**
 * Writes each file to a temporary name in the same folder, then renames them all, in order: a reader sees
 * a whole file or none, never half of one. When any fails, those already renamed are removed again, so
 * that a set of files (the Tekton results) is all there or not at all.
 */
function writeFilesAtomically(files: ReadonlyArray<readonly [path: string, content: string]>): void {
  const temporary = files.map(([path]) => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`))
  const renamed: string[] = []
  try {
    files.forEach(([, content], index) => writeFileSync(temporary[index]!, content, { flag: 'w', mode: 0o644 }))
    for (const [index, [path]] of files.entries()) {
      renameSync(temporary[index]!, path)
      renamed.push(path)
    }
  } catch (error) {
    for (const path of renamed) rmSync(path, { force: true })
    throw error
  } finally {
    for (const path of temporary) rmSync(path, { force: true })
  }
}

const realFiles: FileSystem = {
  read: readNamedFile,
  writeAll: writeFilesAtomically,
  remove: (path) => rmSync(path, { force: true }),
  fileExists: (path: string) => existsSync(path),
  isDirectory: (path: string) => {
    try {
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  },
  isWritableDirectory: (path: string) => {
    try {
      accessSync(path, fsConstants.W_OK)
      return statSync(path).isDirectory()
    } catch {
      return false
    }
  },
}

/** What one run writes to: stdout and stderr, redacted of the secrets it learns on the way. */
interface Output {
  readonly secrets: string[]
  /** Text for a person: redacted, but for the summary's verdict line. */
  readonly stdout: (text: string) => void
  /** JSON already redacted by value (redactReport): written as it is, so that it stays JSON. */
  readonly json: (text: string) => void
  /** One line on stderr with the tool's name; a store's words quoted in it are shown escaped. */
  readonly say: (line: string) => void
}

function outputFor(io: Io): Output {
  const secrets: string[] = []
  return {
    secrets,
    stdout: (text) => io.stdout(redactSummary(text, secrets)),
    json: (text) => io.stdout(text),
    say: (line) => io.stderr(redact(`${NAME}: ${escapeControls(line)}\n`, secrets)),
  }
}

/** One run in progress: when it started, the deadline every wait races, what it is doing, the client to close. */
interface Run {
  readonly started: number
  readonly deadline: AbortSignal
  phase: string
  /** Closed at the end of the run, whatever happens. */
  readonly clients: HttpClient[]
  /** The image judged: as given, or as the --input document names it. */
  image?: ImageRef
  /** What a document that names no image digest says it is the scan of (its subject, or the file). */
  subject?: string
}

/** The files a run needs, read and checked before any request: the store's or the registry's settings (neither for --input) and the exemptions. */
interface Prepared {
  readonly store?: StoreSettings
  readonly registry?: RegistryAccess
  readonly exemptions: readonly Exemption[]
  readonly kev?: KevCatalog
}

/** The Node the gate is built for; an older one fails inside undici, far from the cause. */
export const NODE_MAJOR = 24

/** Node `version` (process.versions.node) is one the gate runs on, or a usage error that says which it needs. */
export function checkRuntime(version: string): void {
  const major = Number.parseInt(version, 10)
  if (!(major >= NODE_MAJOR)) throw new UsageError('RUNTIME', `needs Node ${NODE_MAJOR} or later; this is Node ${cut(escapeControls(version), 20)}: run the published image, or install Node ${NODE_MAJOR}`)
}

/** Runs the gate and returns its exit code: read the configuration, prepare, obtain the document, judge, emit. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const output = outputFor(io)
  let config: Config
  try {
    checkRuntime(process.versions.node)
    const args = parseArgs(argv)
    if (args.kind !== 'run') {
      output.stdout(args.kind === 'help' ? renderHelp() : `${NAME} ${VERSION}\n`)
      return EXIT.PASS
    }
    const scanPolicy = await loadScanPolicy(args.values, io)
    if (args.values.has('--print-exemptions')) {
      if (!scanPolicy) throw new UsageError('SCAN_POLICY', '--print-exemptions converts a ScanPolicy: give it with --scan-policy FILE')
      output.stdout(renderScanPolicyExemptions(scanPolicy, io.now()))
      return EXIT.PASS
    }
    config = resolveConfig(args.values, args.positionals, { env: io.env, ...io.files }, io.now(), scanPolicy)
    if (scanPolicy) describeScanPolicyImport(scanPolicy, args.values, io.env, output)
  } catch (error) {
    return failEarly(error, argv, io, output)
  }
  const run: Run = { started: io.now(), deadline: AbortSignal.any([io.signal, AbortSignal.timeout(timerMs(config.timeoutMs))]), phase: 'reading the configuration', clients: [], ...(config.image ? { image: config.image } : {}) }
  try {
    if (!config.source) {
      output.say(`gate none: no policy enforced for ${config.image?.reference ?? 'the image'}; the store was not asked`)
      return emit(config, run, output, io.files, { skipped: true })
    }
    const prepared = await prepare(config, run, output, io)
    const obtained = await obtainDocument(config, prepared, run, output, io)
    const setAside = obtained.document instanceof ScanFiles ? obtained.document.setAside : []
    const [evaluation, summary] = judge(config, run.image ?? run.subject!, obtained, setAside, prepared, io, await cvssFor(obtained.document))
    return emit(config, run, output, io.files, { evaluation, setAside }, summary)
  } catch (caught) {
    return fail(caught, config, run, output, io)
  } finally {
    await Promise.all(run.clients.map((client) => client.close().catch(() => undefined)))
  }
}

/** The CVSS calculator, loaded only for a CycloneDX document with a rating that states neither severity nor score, only a vector. */
const cvssFor = (document: unknown) => (needsCvss(document) ? loadCvssScorer() : Promise.resolve(undefined))

/** A client for the endpoint, closed when the run ends. */
async function connect(run: Run, io: Io, endpoint: Endpoint): Promise<HttpClient> {
  const client = await io.connect(endpoint)
  run.clients.push(client)
  return client
}

/** --scan-policy FILE (or POLICY_SCAN_POLICY): the ScanPolicy read, recognised and translated, before the rest of the configuration it feeds. */
async function loadScanPolicy(values: ReadonlyMap<string, string>, io: Io): Promise<ScanPolicyImport | undefined> {
  const input = optionReader(values, io.env).get('--scan-policy')
  if (!input) return undefined
  // Read before --timeout is known: a config file gets the time a request gets.
  const signal = AbortSignal.any([io.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
  const text = await io.files.read(input.value, `the ScanPolicy named by ${input.origin}`, { signal, limits: configFileLimits('the ScanPolicy') })
  const [{ parseAllDocuments }, codecs] = await Promise.all([importCommonJs(import('yaml')), loadCodecs()])
  return io.blocking(() => {
    const documents = parseAllDocuments(text, { uniqueKeys: true })
    const list = Array.isArray(documents) ? documents : [documents]
    const broken = list.find((document) => document.errors.length)
    if (broken) throw new UsageError('SCAN_POLICY', `${input.value}: not valid YAML: ${broken.errors[0]!.message.split('\n')[0]}`)
    const contents = list.map((document) => {
      try {
        return document.toJS({ maxAliasCount: 100 })
      } catch (error) {
        throw new UsageError('SCAN_POLICY', `${input.value}: cannot be read (${(error as Error).message.split('\n')[0]})`)
      }
    })
    return scanPolicyFrom(contents, input.value, (rule) => codecs.sha256(Buffer.from(rule)).slice('sha256:'.length))
  })
}

/** What the ScanPolicy set, what flags overrode, and where its semantics differ: one line each. */
function describeScanPolicyImport(scanPolicy: ScanPolicyImport, values: ReadonlyMap<string, string>, env: Environment['env'], output: Output): void {
  const { get } = optionReader(values, env)
  const gate = get('--gate')?.origin
  const unknownAs = get('--unknown-as')?.origin
  output.say(
    `--scan-policy: ScanPolicy ${scanPolicy.name} (TAP's ${templateTitle(scanPolicy)}): gate ${scanPolicy.gate}${gate ? ` (overridden by ${gate})` : ''}, unknown severity ${scanPolicy.unknownAs === 'ignore' ? 'ignored' : `counts as ${scanPolicy.unknownAs}`}${unknownAs ? ` (overridden by ${unknownAs})` : ''}, ${plural(scanPolicy.exemptions.length, 'ignored CVE')} as exemptions`,
  )
  for (const note of scanPolicy.notes) output.say(`--scan-policy: ${note}`)
  output.say(
    `--scan-policy: Scan 1.0 ${scanPolicy.template === 'grype' ? 'passed a finding when any one of its ratings was outside notAllowedSeverities' : 'passed a finding only when none of its ratings was in notAllowedSeverities'}; the gate takes the highest rating, so findings that passed before may block now (listed as such)`,
  )
}

/** Reads the token, CA and exemptions files, bounded by the deadline; the token joins the secrets at once. */
async function prepare(config: Config, run: Run, output: Output, io: Io): Promise<Prepared> {
  const store = config.source && 'store' in config.source ? await loadStoreSettings(config.source.store, config.timeoutMs, run.deadline, io.files) : undefined
  if (store) output.secrets.push(store.token)
  const registry = config.source && 'scanResult' in config.source ? await loadRegistryAccess(config.source.scanResult, config.timeoutMs, run.deadline, io) : undefined
  run.phase = 'reading --exemptions'
  const exemptions = [...(config.exemptionsFile ? await loadExemptions(config.exemptionsFile, output.secrets, run.deadline, io) : []), ...(config.scanPolicy?.exemptions ?? [])]
  run.phase = 'reading --kev'
  const kev = config.kevFile ? await loadKevCatalog(config.kevFile, run.deadline, output, io) : undefined
  return { ...(store ? { store } : {}), ...(registry ? { registry } : {}), exemptions, ...(kev ? { kev } : {}) }
}

const MAX_KEV_BYTES = 16 * 1024 * 1024

/** CISA's catalog, checked; one older than KEV_MAX_AGE_DAYS is used, and said to be old. */
async function loadKevCatalog(path: string, signal: AbortSignal, output: Output, io: Io): Promise<KevCatalog> {
  const text = await io.files.read(path, '--kev', { signal, limits: { maxBytes: MAX_KEV_BYTES, tooLarge: () => new UsageError('KEV', `--kev ${path} is larger than ${MAX_KEV_BYTES / 2 ** 20} MiB: that is not CISA's catalog`) } })
  const catalog = io.blocking(() => {
    let document: unknown
    try {
      document = parseJson(text)
    } catch {
      throw new UsageError('KEV', `--kev ${path} is not JSON: give CISA's known_exploited_vulnerabilities.json`)
    }
    return kevCatalogFrom(document, `--kev ${path}`)
  })
  const ageDays = Math.floor((io.now() - catalog.released) / 86_400_000)
  if (ageDays > KEV_MAX_AGE_DAYS) {
    output.say(`warning: the KEV catalog ${path} (version ${catalog.version}) was released ${ageDays} days ago: refresh it, CISA adds entries every week`)
  }
  return catalog
}

/** What one look at the image's scans found: its state, or what the answer means for the wait. */
type ScanLook = Exclude<PollOutcome, { kind: 'done' }> | { readonly kind: 'state'; readonly state: ScanState }

/** The ImageVulnerabilityScans of the pod's namespace as its service account sees them: one connection, asked of any digest. */
interface ScanList {
  readonly namespace: string
  readonly peer: Peer & Timing
  /** One list: where the scan of `digest` stands. */
  readonly check: (signal: AbortSignal, digest: string) => Promise<ScanLook>
  /**
   * Lists, then watches from the list's resourceVersion: resolves as soon as the scan of `digest` has
   * succeeded or failed, or when the watch ends (a retry: the next call watches on, or lists again after
   * 410 Gone). `onChange` hears each other state.
   */
  readonly follow: (signal: AbortSignal, digest: string, onChange: (state: ScanState) => void) => Promise<ScanLook>
}

/** How long the store's poll waits for a look at the scan, for its progress line. */
const EXPLAIN_TIMEOUT_MS = 5_000

/** The server ends each watch after this long, before undici's 60 s idle limit would. */
const WATCH_SECONDS = 45

const isSettled = (state: ScanState) => state.kind === 'succeeded' || state.kind === 'failed'

async function openScanList(selector: string | undefined, timing: Timing & { readonly proxied: boolean }, config: Config, run: Run, output: Output, io: Io): Promise<ScanList> {
  const api = await kubernetesApi(io, timing, run.deadline)
  output.secrets.push(api.token)
  const url = new URL(`${SCAN_API}/namespaces/${encodeURIComponent(api.namespace)}/imagevulnerabilityscans`, api.baseUrl)
  if (selector) url.searchParams.set('labelSelector', selector)
  const client = await connect(run, io, api)
  const fetch = bearerFetch(client, api, config.maxBodyBytes)
  const list = async (signal: AbortSignal, digest: string) => {
    const response = await fetch(url, signal)
    return io.blocking(() => {
      const classified = classifyKubernetesResponse(response, api.namespace, io.now())
      return classified.kind === 'done' ? { kind: 'listed' as const, document: classified.document, state: scanStateOf(classified.document, digest) } : classified
    })
  }
  // What the watch knows between calls: the scans by name, and where to watch from.
  let scans: Map<string, unknown> | undefined
  let resourceVersion = ''
  const versionOf = (object: unknown) => (isObject(object) && isObject(object.metadata) ? textOf(object.metadata.resourceVersion) : '')
  const nameOf = (object: unknown) => (isObject(object) && isObject(object.metadata) ? textOf(object.metadata.name) : '')
  const lineLimits: BodyLimits = { maxBytes: MAX_CONFIG_FILE_BYTES, tooLarge: () => new NoVerdictError('MALFORMED_RESPONSE', `a watch event of the Kubernetes API is larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB`) }
  return {
    namespace: api.namespace,
    peer: { ...api, hints: { name: 'the Kubernetes API', tls: `the service account's ca.crt does not sign ${api.baseUrl.hostname}`, dns: 'KUBERNETES_SERVICE_HOST' } },
    async check(signal, digest) {
      const listed = await list(signal, digest)
      return listed.kind === 'listed' ? { kind: 'state', state: listed.state } : listed
    },
    async follow(signal, digest, onChange) {
      if (!scans || !resourceVersion) {
        const listed = await list(signal, digest)
        if (listed.kind !== 'listed') return listed
        scans = new Map((listed.document as { items: unknown[] }).items.map((item) => [nameOf(item), item]))
        resourceVersion = versionOf(listed.document)
        if (isSettled(listed.state) || !resourceVersion) return { kind: 'state', state: listed.state }
        onChange(listed.state)
      }
      const watch = new URL(url)
      watch.search = `${url.search ? `${url.search}&` : '?'}watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_SECONDS}&resourceVersion=${encodeURIComponent(resourceVersion)}`
      let settled: ScanState | undefined
      let gone = false
      const response = await client.lines(watch, bearerHeaders(api.token), signal, lineLimits, (line) => {
        let event: unknown
        try {
          event = parseJson(line)
        } catch {
          throw new NoVerdictError('MALFORMED_RESPONSE', `a watch event of the Kubernetes API is not JSON: "${firstLine(line, 80)}"`)
        }
        const type = isObject(event) ? event.type : undefined
        const object = isObject(event) ? event.object : undefined
        if (type === 'ERROR') {
          gone = isObject(object) && object.code === 410
          if (!gone) throw new NoVerdictError('KUBERNETES_ERROR', `the watch of ImageVulnerabilityScans failed: ${firstLine(textOf(isObject(object) ? object.message : '') || JSON.stringify(object ?? null), 160)}`)
          return false
        }
        if (versionOf(object)) resourceVersion = versionOf(object)
        if (type === 'DELETED') scans!.delete(nameOf(object))
        else if (type === 'ADDED' || type === 'MODIFIED') scans!.set(nameOf(object), object)
        else return true // BOOKMARK, or a type this version does not know
        const state = scanStateOf({ items: [...scans!.values()] }, digest)
        if (isSettled(state)) {
          settled = state
          return false
        }
        onChange(state)
        return true
      })
      if (response.status === 410) gone = true
      else if (response.status !== 200) {
        const classified = classifyKubernetesResponse(redactedAnswer(response, api.token, lineLimits), api.namespace, io.now())
        if (classified.kind !== 'done') return classified
      }
      if (settled) return { kind: 'state', state: settled }
      if (gone) scans = undefined
      return { kind: 'retry', reason: gone ? 'the watch fell behind (410 Gone): listing again' : `the watch ended after ${WATCH_SECONDS}s: watching on`, backoff: false }
    },
  }
}

/**
 * --scan-result auto: the reference of the results the image's newest ImageVulnerabilityScan published,
 * once it has succeeded, read from the Kubernetes API with the pod's service account. A failed scan ends
 * the run at once (exit 3, the scan's reason); a scan that never finishes ends at the deadline.
 */
async function followScan(image: ImageRef, scans: ScanList, config: Config, run: Run, output: Output, deps: Omit<WaitDeps, 'fetch'>): Promise<OciRef> {
  run.phase = 'waiting for the scan'
  let lastSaid = ''
  output.say(`following the ImageVulnerabilityScan of ${image.reference} in namespace ${scans.namespace}${config.scanSelector ? ` (${config.scanSelector})` : ''} (waiting up to ${formatDuration(config.timeoutMs)})`)
  const found = await retryUntil(
    {
      what: `a finished scan of ${image.digest} in namespace ${scans.namespace}`,
      timeoutHint: `See kubectl get imagevulnerabilityscans -n ${scans.namespace} -o wide`,
      onNotFound: 'wait',
      attempt: async (signal): Promise<Step<{ name: string; result: string }>> => {
        const step = await scans.follow(signal, image.digest, (state) => {
          const said = describeScan(state, image.digest)
          if (said !== lastSaid) deps.progress((lastSaid = said))
        })
        if (step.kind !== 'state') return step
        const { state } = step
        if (state.kind === 'succeeded') return { kind: 'accepted', value: state }
        if (state.kind === 'failed') return { kind: 'fail', error: scanFailed(state, image.digest, scans.namespace) }
        return { kind: 'retry', reason: describeScan(state, image.digest), backoff: false }
      },
      heard: () => lastSaid,
    },
    scans.peer,
    deps,
  )
  try {
    return parseOciRef(found!.result, `status.scanResult of ${found!.name}`)
  } catch (error) {
    throw new NoVerdictError('MALFORMED_RESPONSE', (error as Error).message.split(': use ')[0]!)
  }
}

/** A scan that is not done yet, in a progress line. */
function describeScan(state: ScanState, digest: string): string {
  return state.kind === 'none' ? `no ImageVulnerabilityScan of ${digest} yet` : state.kind === 'running' ? `scan ${state.name}: ${state.detail}` : `scan ${state.name}: ${state.kind}`
}

/** Where the pod's service account is mounted. */
const serviceAccountDir = (env: Environment['env']) => env.POLICY_SERVICE_ACCOUNT_DIR?.trim() || DEFAULT_SERVICE_ACCOUNT_DIR

/** What the image's scan is doing, for the store's "not yet" lines; it gives up quietly after one failure to list scans. */
async function scanExplainer(image: ImageRef, selector: string | undefined, store: StoreSettings, config: Config, run: Run, output: Output, io: Io): Promise<Poll<unknown>['explain']> {
  const dir = serviceAccountDir(io.env)
  if (!io.env.KUBERNETES_SERVICE_HOST?.trim() || !io.files.fileExists(join(dir, 'token'))) return undefined
  let scans: ScanList
  try {
    scans = await openScanList(selector, store, config, run, output, io)
  } catch (error) {
    if (run.deadline.aborted) throw error
    output.say(`cannot follow the image's scan (${(error as Error).message}): progress shows only what the store answers`)
    return undefined
  }
  let working = true
  const giveUp = (why: string) => {
    working = false
    output.say(`cannot follow the image's scan (${why}): progress shows only what the store answers`)
  }
  return async (signal) => {
    if (!working) return undefined
    let step: ScanLook
    try {
      // A side look: it may not hold up the store's poll for long.
      step = await scans.check(AbortSignal.any([signal, AbortSignal.timeout(EXPLAIN_TIMEOUT_MS)]), image.digest)
    } catch (error) {
      if (signal.aborted) throw error
      giveUp(error instanceof Error ? error.message : String(error))
      return undefined
    }
    // A failed scan never reaches the store: waiting on would only run out the clock.
    if (step.kind === 'state' && step.state.kind === 'failed') throw scanFailed(step.state, image.digest, scans.namespace)
    if (step.kind === 'state') return describeScanForStore(step.state, io.now())
    giveUp(step.kind === 'fail' ? step.error.message : step.reason)
    return undefined
  }
}

/** The image's scan failed: no verdict, with the scan's own reason and where to look. */
function scanFailed(state: Extract<ScanState, { kind: 'failed' }>, digest: string, namespace: string): NoVerdictError {
  return new NoVerdictError('SCAN_FAILED', `scan ${state.name} of ${digest} failed (${state.reason}: ${state.message}): see kubectl describe imagevulnerabilityscan ${state.name} -n ${namespace}`)
}

/** The scan's state, said to someone waiting for the store. */
export function describeScanForStore(state: ScanState, now: number): string {
  switch (state.kind) {
    case 'none':
      return 'no ImageVulnerabilityScan of the image yet: the scan has not started'
    case 'running':
      return `scan ${state.name} is not done: ${state.detail}`
    case 'failed':
      return `scan ${state.name} failed (${state.reason}: ${state.message}): the store will not receive this scan`
    case 'succeeded':
      return `scan ${state.name} succeeded${state.since === undefined ? '' : ` ${formatDuration(Math.max(0, now - state.since))} ago`}; the store has not received it yet: the AMR Observer is behind or down`
  }
}

/** The Kubernetes API as a pod sees it: KUBERNETES_SERVICE_HOST and _PORT, and the service account's token, CA and namespace. */
async function kubernetesApi(io: Io, timing: Timing & { readonly proxied: boolean }, signal: AbortSignal): Promise<StoreSettings & { namespace: string }> {
  const host = io.env.KUBERNETES_SERVICE_HOST!.trim()
  const port = io.env.KUBERNETES_SERVICE_PORT?.trim() || '443'
  let baseUrl: URL
  try {
    baseUrl = new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`)
  } catch {
    throw new UsageError('KUBERNETES', `KUBERNETES_SERVICE_HOST "${host}" and KUBERNETES_SERVICE_PORT "${port}" make no URL`)
  }
  const dir = serviceAccountDir(io.env)
  const read = (name: string, what: string) => io.files.read(join(dir, name), what, { signal, limits: configFileLimits(what), showPath: name !== 'token' })
  const token = checkToken(await read('token', "the service account's token"), `${dir}/token`)
  const pem = checkCa(await read('ca.crt', "the service account's CA"), `${dir}/ca.crt`, 'the cluster CA (ca.crt of the service account)')
  const namespace = (await read('namespace', "the pod's namespace")).trim()
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) throw new UsageError('KUBERNETES', `${dir}/namespace does not hold a namespace name`)
  return { baseUrl, token, ca: { pem, origin: `${dir}/ca.crt` }, timeoutMs: timing.timeoutMs, pollIntervalMs: timing.pollIntervalMs, proxied: timing.proxied, namespace }
}

/** The Docker config and the registry's CA, read and checked. */
async function loadRegistryAccess(source: ScanResultSource, timeoutMs: number, signal: AbortSignal, io: Io): Promise<RegistryAccess> {
  let dockerConfig: RegistryAccess['dockerConfig']
  if (source.registryConfig) {
    const { file, origin } = source.registryConfig
    const text = await io.files.read(file, `the Docker config named by ${origin}`, { signal, limits: configFileLimits('the Docker config') })
    try {
      dockerConfig = { document: parseJson(text), origin: `${origin} (${file})` }
    } catch {
      throw new UsageError('REGISTRY_CONFIG', `${file} (${origin}) is not JSON: give a Docker config.json or the .dockerconfigjson of secret registry-credentials`)
    }
    checkDockerConfig(dockerConfig.document, source.ref === 'auto' ? undefined : source.ref.registry, dockerConfig.origin)
  }
  const ca = source.registryCa
    ? { pem: checkCa(await io.files.read(source.registryCa.file, 'the registry CA file', { signal, limits: configFileLimits('the CA file') }), source.registryCa.file, "the registry's CA"), origin: source.registryCa.file }
    : undefined
  return { ...(dockerConfig ? { dockerConfig } : {}), ...(ca ? { ca } : {}), proxied: source.proxied, timeoutMs, pollIntervalMs: source.pollIntervalMs }
}

/**
 * The Image document from --input (a store body or a scanner's CycloneDX), or from the store once it holds it
 * (and, with --triage, its triage); run.image is then the image judged, and expectedDigest the digest the
 * document must carry (none when it names none, or when it named the image itself).
 */
async function obtainDocument(config: Config, prepared: Prepared, run: Run, output: Output, io: Io): Promise<Obtained> {
  const deps: Omit<WaitDeps, 'fetch'> = { now: io.now, sleep: io.sleep, random: io.random, progress: output.say, signal: io.signal, started: run.started, blocking: io.blocking }
  if (config.source && 'input' in config.source) {
    const { input } = config.source
    const settled = settleImage(await readSavedDocument('--input', input, config, run, output, io), `--input ${input}`, run, output)
    return { ...settled, baseline: await obtainBaseline(config, run, output, io, undefined) }
  }
  if (config.source && 'scanResult' in config.source) {
    const source = config.source.scanResult
    const registry = prepared.registry!
    const client = await connect(run, io, registry)
    const read = async (ref: OciRef) => {
      run.phase = `reading ${ref.reference}`
      output.say(`reading the scan results ${ref.reference} (waiting up to ${formatDuration(config.timeoutMs)})`)
      const scans = await readScanResult(ref, registry, client, deps, config.maxBodyBytes, output.secrets)
      output.say(`evaluating ${scans.files.map((file) => file.name).join(', ')} from ${ref.reference}`)
      return scans
    }
    let scans: ScanList | undefined
    let ref: OciRef
    if (source.ref === 'auto') {
      run.phase = 'reading the service account'
      scans = await openScanList(config.scanSelector, { ...source, timeoutMs: config.timeoutMs }, config, run, output, io)
      ref = await followScan(run.image!, scans, config, run, output, deps)
    } else ref = source.ref
    const settled = settleImage(await read(ref), ref.reference, run, output)
    // The baseline's results: those of its newest succeeded scan, when the cluster still lists one.
    const baselineScan = async (baseline: ImageRef) => {
      const look = await scans!.check(run.deadline, baseline.digest)
      if (look.kind === 'fail') throw look.error
      return look.kind === 'state' && look.state.kind === 'succeeded' ? read(parseOciRef(look.state.result, `status.scanResult of ${look.state.name}`)) : undefined
    }
    return { ...settled, baseline: await obtainBaseline(config, run, output, io, scans ? baselineScan : undefined) }
  }
  const store = prepared.store!
  const image = run.image!
  run.phase = 'waiting for the store'
  output.say(`checking ${image.reference} against gate ${config.gate} at ${store.baseUrl.origin}${store.baseUrl.pathname} (waiting up to ${formatDuration(store.timeoutMs)})`)
  const storeDeps: WaitDeps = { ...deps, fetch: bearerFetch(await connect(run, io, store), store, config.maxBodyBytes) }
  if (config.newerThan !== undefined) await waitForFreshReport(store, image.digest, config.newerThan, storeDeps)
  const explain = await scanExplainer(image, config.scanSelector, store, config, run, output, io)
  const document = await waitForImageReport(store, image.digest, storeDeps, explain)
  // The running image was scanned long ago: its report is there now or not at all.
  const baselineInStore = (baseline: ImageRef) =>
    pollStore({ url: imageEndpoint(store.baseUrl, baseline.digest), what: `the baseline ${baseline.digest} in the store`, onNotFound: 'absent', accept: ready }, store, storeDeps)
  const baseline = await obtainBaseline(config, run, output, io, baselineInStore)
  if (!config.triage) return { document, triage: [], expectedDigest: image.digest, baseline }
  const triage = await fetchTriage(store, image.digest, storeDeps)
  if (!triage) output.say('--triage: this store has no triage endpoint (404 on /api/v1/triage, TAP 1.6 or later has it): no triage applied')
  return { document, triage: triage ?? [], expectedDigest: image.digest, baseline }
}

/** What judging needs from the source: the document, the store's triage, the digest it must name, and the baseline's findings. */
interface Obtained {
  readonly document: unknown
  readonly triage: readonly TriageDecision[]
  readonly expectedDigest?: string
  /** Undefined without --baseline; null when the baseline has no scan data (then everything is judged). */
  readonly baseline?: ReadonlyMap<string, Severity> | null | undefined
}

/**
 * The baseline's findings: from --baseline-input, or from the same source as the image (`fromSource`).
 * A baseline without scan data is said and judged strictly (null): everything counts, nothing is dropped.
 */
async function obtainBaseline(config: Config, run: Run, output: Output, io: Io, fromSource: ((image: ImageRef) => Promise<unknown>) | undefined): Promise<ReadonlyMap<string, Severity> | null | undefined> {
  if (!config.baseline) return undefined
  const { image, input } = config.baseline
  let document: unknown
  if (input) {
    document = await readSavedDocument('--baseline-input', input, config, run, output, io)
  } else if (image && fromSource) {
    run.phase = `reading the baseline ${image.reference}`
    document = await fromSource(image)
  }
  if (document === undefined) {
    output.say(`--baseline ${image?.reference ?? ''}: no scan data for it here, so every finding is judged as new (strict)`)
    return null
  }
  const named = image ? digestNamedBy(document) : undefined
  if (image && named && named !== image.digest) throw digestMismatch("the baseline's scan", named, image.digest)
  const cvss = await cvssFor(document)
  const baseline = io.blocking(() => baselineFrom(document, cvss))
  output.say(`--baseline ${image?.reference ?? `--baseline-input ${input}`}: ${plural(baseline.size, 'finding')} in the running image; only new or worse findings block`)
  return baseline
}

/**
 * A document that is not the store's answer for the digest (--input, a scan result): it may name the image
 * it describes. Without an image given, that names it; with one, a digest it names must agree.
 */
function settleImage(document: unknown, origin: string, run: Run, output: Output): Obtained {
  const named = digestNamedBy(document)
  if (!run.image) {
    if (!named) {
      // A filesystem or repository scan, a VEX, an SBOM without a digest: judged, and named by what it says it scanned.
      run.subject = (bomsOf(document) ?? []).map((file) => subjectOf(file.bom)).find(Boolean) ?? origin
      output.say(`${origin} names no image digest: judged as the scan of ${run.subject} (give the image to tie the verdict to it)`)
      return { document, triage: [] }
    }
    run.image = { reference: named, digest: named }
    // Every file of a scan result must describe the same image.
    return { document, triage: [], ...(document instanceof ScanFiles ? { expectedDigest: named } : {}) }
  }
  if (bomsOf(document) && !named) {
    output.say(`${origin} names no image digest: it is taken to be the scan of ${run.image.reference}`)
    return { document, triage: [] }
  }
  return { document, triage: [], expectedDigest: run.image.digest }
}

/** The verdict on the document, and the summary a person reads; CPU work, so a signal still ends it at once. */
function judge(config: Config, image: ImageRef | string, { document, triage, expectedDigest, baseline }: Obtained, setAside: readonly SetAside[], prepared: Prepared, io: Io, cvss: CvssScorer | undefined): readonly [Evaluation, string] {
  const policy: Policy = {
    gate: config.gate,
    unknownAs: config.unknownAs,
    onlyFixed: config.onlyFixed,
    exemptions: prepared.exemptions,
    triage,
    now: io.now(),
    warnAt: config.warnAt,
    ...(config.failOnScore === undefined ? {} : { failOnScore: config.failOnScore }),
    ...(prepared.kev ? { kev: prepared.kev.entries } : {}),
    ...(baseline ? { baseline } : {}),
    ...(config.scanPolicy ? { scan1: config.scanPolicy } : {}),
  }
  const color = io.isTTY && !io.env.NO_COLOR && io.env.TERM !== 'dumb'
  return io.blocking(() => {
    const evaluation = evaluate(document, policy, expectedDigest, cvss)
    return [evaluation, renderText(evaluation, image, { color, policy, triage: config.triage, setAside })] as const
  })
}

/**
 * Every verdict, and every failure to reach one, ends here. The files are written first, so that Tekton
 * never reads a stale or half-written result; when the results cannot be written the verdict is still
 * printed, but the exit code says no verdict, since the Task could not record it.
 */
function emit(config: Config, run: Run, output: Output, files: FileSystem, outcome: Outcome, summary?: string): number {
  const { gate, mode, resultsDir, report } = config
  const about = { image: run.image ?? null, ...(run.subject === undefined ? {} : { subject: run.subject }), gate, mode }
  let decision = decideExit(outcome, mode)
  // Built only when something reads it: a text run of 50,000 findings need not copy 5,000 of them.
  let built: JsonReport | undefined
  const jsonReport = () => (built ??= redactReport(buildJsonReport(about, outcome, decision), output.secrets))
  if (resultsDir) {
    try {
      writeResults(files, resultsDir, jsonReport())
    } catch (error) {
      const message = `the verdict could not be recorded: cannot write the results to ${resultsDir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`
      try {
        files.remove(join(resultsDir, 'verdict')) // no stale verdict of an earlier run
      } catch {}
      output.say(`no verdict: ${message}`)
      const unrecorded = { ...outcome, error: { code: 'RESULTS_NOT_WRITTEN', message } }
      decision = decideExit(unrecorded, mode)
      built = redactReport(buildJsonReport(about, unrecorded, decision), output.secrets)
    }
  }
  if (report) {
    try {
      files.writeAll([[report.path, renderReport(jsonReport(), report.format)]])
    } catch (error) {
      output.say(`warning: cannot write the report ${report.path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); the verdict stands`)
    }
  }
  if (config.format === 'json') output.json(toJson(jsonReport()))
  else if (summary) output.stdout(summary)
  if (decision.exitCode !== decision.enforcedExitCode) {
    output.say(auditLine(decision.enforcedExitCode))
  }
  return decision.exitCode
}

/** The Tekton results of a report, one file each. The verdict goes last: a verdict file on disk means the counts beside it are this run's too. */
function writeResults(files: FileSystem, dir: string, report: JsonReport): void {
  const results = Object.entries(tektonResults(report))
  const ordered = [...results.filter(([name]) => name !== 'verdict'), ...results.filter(([name]) => name === 'verdict')]
  files.writeAll(ordered.map(([name, content]) => [join(dir, name), content] as const))
}

/** What audit mode says when it lets through a run that enforce mode would have stopped. */
const auditLine = (enforced: number) =>
  `AUDIT: the gate would have failed here (exit ${enforced}, ${enforced === EXIT.VIOLATION ? 'policy violated' : enforced === EXIT.USAGE ? 'configuration error' : 'no verdict'}); --mode audit lets the pipeline go on`

/** An option's raw value from the arguments (`--flag VALUE`, `--flag=VALUE`) or the environment, for a run whose options did not parse. */
function rawOption(argv: readonly string[], env: Environment['env'], flag: string, envName: string): string | undefined {
  for (let i = 0; i < argv.length && argv[i] !== '--'; i++) {
    if (argv[i] === flag) return argv[i + 1]
    if (argv[i]!.startsWith(`${flag}=`)) return argv[i]!.slice(flag.length + 1)
  }
  return env[envName]
}

/**
 * A usage error before the options were all read: said on stderr, and, when the arguments name a results
 * folder, written there too (verdict error, reason, message), so the TaskRun says why. In audit mode
 * (as the arguments or POLICY_MODE say it) the run still exits 0.
 */
function failEarly(error: unknown, argv: readonly string[], io: Io, output: Output): number {
  const code = reportUsageError(error, output)
  if (!(error instanceof UsageError)) return code
  const resultsDir = rawOption(argv, io.env, '--results-dir', 'POLICY_RESULTS_DIR')?.trim()
  const audit = rawOption(argv, io.env, '--mode', 'POLICY_MODE')?.trim().toLowerCase() === 'audit'
  const report = buildJsonReport({ image: null, gate: null, mode: audit ? 'audit' : 'enforce' }, { error: { code: error.code, message: error.message, usage: true } })
  if (resultsDir) {
    try {
      writeResults(io.files, resultsDir, redactReport(report, output.secrets))
    } catch {
      output.say(`cannot write the results to ${resultsDir} either`)
    }
  }
  if (audit) output.say(auditLine(EXIT.USAGE))
  return report.exitCode
}

/** A run that ended without a verdict: a signal, the deadline, a usage error found late, a no-verdict answer, or a bug. */
function fail(caught: unknown, config: Config, run: Run, output: Output, io: Io): number {
  let error = caught
  if (io.signal.aborted && !(caught instanceof NoVerdictError)) error = io.signal.reason
  else if (run.deadline.aborted && !(caught instanceof NoVerdictError || caught instanceof UsageError)) {
    error = new NoVerdictError('TIMEOUT', `timed out after ${formatDuration(config.timeoutMs)} ${run.phase}`)
  }
  if (error instanceof InterruptedError) {
    output.say(`${error.message} before a verdict was reached`)
    return exitCodeFor(error)
  }
  if (error instanceof UsageError) {
    // Found after the options were read (a file, a Docker config): the report and the results say so too.
    reportUsageError(error, output)
    return emit(config, run, output, io.files, { error: { code: error.code, message: error.message, usage: true } })
  }
  const known = error instanceof NoVerdictError ? error : undefined
  const message = known ? known.message : `unexpected error, this is a bug: ${(error as Error)?.stack ?? String(error)}`
  output.say(`no verdict: ${message}`)
  return emit(config, run, output, io.files, { error: { code: known?.code ?? 'BUG', message } })
}

/** A usage error is one line and a pointer to --help (exit 2); anything else here is a bug (exit 3). */
function reportUsageError(error: unknown, output: Output): number {
  if (error instanceof UsageError) {
    output.say(error.message)
    output.say('run with --help for usage')
  } else {
    output.say(`no verdict: unexpected error, this is a bug: ${(error as Error)?.stack ?? String(error)}`)
  }
  return exitCodeFor(error)
}

// ---------------------------------------------------------------------------------------------
// Entry: runs only when this file is the program, so tests can import the functions above.

/** Whether the module at `moduleUrl` is the program node was started with (`script`, as in process.argv[1], possibly through a link). */
export function isMain(moduleUrl: string, script: string | undefined, resolve: (path: string) => string = realpathSync): boolean {
  if (!script) return false
  try {
    return moduleUrl === pathToFileURL(resolve(script)).href
  } catch {
    return false
  }
}

if (isMain(import.meta.url, process.argv[1])) {
  const controller = new AbortController()
  const listeners = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const listener = () => {
      const interrupted = new InterruptedError(signal)
      controller.abort(interrupted)
      // Whatever is still pending (a TLS handshake, a slow close), stop within a second.
      setTimeout(() => process.exit(interrupted.exitCode), 1_000).unref()
    }
    process.once(signal, listener)
    return [signal, listener] as const
  })
  // A reader that closes early (`| head`) is not an error of the gate: the exit code stays the verdict's.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', (error: NodeJS.ErrnoException) => void (error.code === 'EPIPE' || process.exit(EXIT.NO_VERDICT)))
  const io: Io = {
    env: process.env,
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdin: process.stdin,
    isTTY: Boolean(process.stdout.isTTY),
    signal: controller.signal,
    now: Date.now,
    // Without a listener, SIGINT and SIGTERM take their default action at once (exit 130/143 as the
    // shell and Kubernetes report it), even in the middle of a JSON.parse that no listener could interrupt.
    blocking: (work) => {
      for (const [signal, listener] of listeners) process.removeListener(signal, listener)
      try {
        return work()
      } finally {
        for (const [signal, listener] of listeners) if (!controller.signal.aborted) process.once(signal, listener)
      }
    },
    availableMemory,
    sleep: (ms, signal) => sleep(ms, undefined, { signal }),
    random: Math.random,
    files: realFiles,
    connect: createHttpClient,
  }
  process.exitCode = await main(process.argv.slice(2), io)
  // Work that cannot be cancelled (a FIFO that is never written, a socket a proxy holds open) must not keep the process past its verdict.
  setTimeout(() => process.exit(), 1_000).unref()
}
