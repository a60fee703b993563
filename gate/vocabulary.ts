declare const __VERSION__: string // replaced by build.mjs with package.json's version
export const VERSION = typeof __VERSION__ === 'string' ? __VERSION__ : '0.0.0-dev'
export const NAME = 'amr-policy-gate'

// ---------------------------------------------------------------------------------------------
// Exit codes: this table feeds --help, docs/usage.md and the tests.

export const EXIT = { PASS: 0, VIOLATION: 1, USAGE: 2, NO_VERDICT: 3, SIGINT: 130, SIGTERM: 143 } as const

export const EXIT_CODES: ReadonlyArray<readonly [code: number, meaning: string]> = [
  [EXIT.PASS, 'passed: nothing blocks at the gate, or gate none'],
  [
    EXIT.VIOLATION,
    'policy violated: a finding blocks (at or above the gate, listed in the KEV catalog, or by --fail-on-score or ' +
      '--unknown-as); exemptions and triage can suppress it',
  ],
  [EXIT.USAGE, 'invalid usage or configuration (or Node older than 24), found before any request'],
  [
    EXIT.NO_VERDICT,
    'no verdict: timed out, token rejected (401/403), TLS failure, a host that does not resolve, malformed response, ' +
      'a scan file the gate cannot account for, the scan of another image, a failed scan, a body too large for ' +
      '--max-body-size or for memory, the store, the registry or the Kubernetes API refused or kept failing, or ' +
      'the Tekton results could not be written',
  ],
  [EXIT.SIGINT, 'interrupted by SIGINT'],
  [EXIT.SIGTERM, "stopped by SIGTERM (Tekton's step timeout, a cancelled run), within a second"],
]

export const DEFAULT_CA_PATH = '/var/cert/caCrt'
/** Where a pod finds its service account's token, ca.crt and namespace. */
export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'
/** One request may not take longer than this (the overall deadline may cut it sooner). */
export const REQUEST_TIMEOUT_MS = 60_000
/** Connecting to the store, or to the proxy, may not take longer than this. */
export const CONNECT_TIMEOUT_MS = 10_000
/** Backoff after a failed request (429, 5xx, network error): 1 s doubling up to 30 s. */
export const RETRY_BASE_MS = 1_000
export const RETRY_MAX_MS = 30_000
/** The text summary lists at most this many blocking findings; --format json lists all. */
export const MAX_LISTED_FINDINGS = 20
/** Exemptions that expire within this are warned about. */
export const EXPIRY_WARNING_DAYS = 14
/** VEX statuses that suppress a finding (OpenVEX); affected and under_investigation suppress nothing. */
export const SUPPRESSING_VEX_STATUSES: ReadonlySet<string> = new Set(['not_affected', 'fixed'])

/** Triage states that suppress a finding; in_triage and exploitable suppress nothing. */
export const SUPPRESSING_TRIAGE_STATES: ReadonlySet<string> = new Set([
  'not_affected',
  'false_positive',
  'resolved',
  'resolved_with_pedigree',
])
/** Triage pages are fetched this many records at a time, and at most this many pages. */
export const TRIAGE_PAGE_SIZE = 100
export const MAX_TRIAGE_PAGES = 1_000
/** Node cannot wait longer than this in one timer; a longer one would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1
/**
 * Tokens shorter than this are refused: redacting them would cut into ordinary words (real ones are hundreds of
 * characters).
 */
export const MIN_TOKEN_LENGTH = 16
/** The token, CA and exemptions files are read up to this size; a larger one is a usage error. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024
/**
 * A host that does not resolve (ENOTFOUND) is retried this many times in a row, to ride out a DNS restart, then ends
 * the run.
 */
export const MAX_DNS_FAILURES = 3
/** Text output: the widest a field from outside may be before it is cut with an ellipsis. */
export const TEXT_WIDTH = { id: 40, package: 80, note: 160 } as const
/** Machine reports: the longest a field from outside may be, and the most findings listed per list (worst first). */
export const MAX_REPORT_FIELD = 256
export const MAX_REPORTED_FINDINGS = 5_000
/** Tekton results: the longest vulnerability ID in `blocking`. */
export const MAX_RESULT_ID = 64
/** A body larger than this gets a progress line before it is parsed. */
export const LARGE_BODY_BYTES = 8 * 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Options: this table feeds the parser, the defaults, --help, docs/usage.md's table and the tests.

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
  /** May be given more than once; its variable then holds a comma-separated list. */
  readonly repeatable?: true
  /** One line for --help. */
  readonly help: string
  /** More for docs/usage.md's table than --help has room for. */
  readonly more?: string
}

export const OPTION_TABLE = [
  {
    flag: '--gate',
    env: 'GATE',
    value: 'LEVEL',
    choices: GATES,
    required: true,
    help: 'the lowest severity that fails; none passes without contacting the store',
    more: 'Any case. `none` exits 0, as the seed does.',
  },
  {
    flag: '--url',
    env: 'METADATA_STORE_URL',
    value: 'URL',
    help: 'the store: host[:port][/prefix] (https implied) or https://...; http:// is refused',
    more:
      "The seed's form works as is. `http://` would send the token in clear; a malformed scheme (`http:/host`, " +
      '`https:host`) is refused rather than read as the host `http`.',
  },
  {
    flag: '--token-file',
    env: 'ACCESS_TOKEN_FILE',
    value: 'FILE',
    help: 'file holding the bearer token (or the token itself in ACCESS_TOKEN); no flag takes its value',
    more:
      `Surrounding whitespace is trimmed. A token under ${MIN_TOKEN_LENGTH} characters is refused: it could not ` +
      `be redacted from output without cutting into words. A path that cannot be read is not echoed back (it may be ` +
      `the token pasted in the wrong place).`,
  },
  {
    flag: '--ca-cert',
    env: 'METADATA_STORE_CA_CERT',
    value: 'FILE',
    defaultText: '/var/cert/caCrt if present',
    help: "PEM file with the store's CA, trusted besides the default roots; the variable may hold the PEM itself",
    more: 'As in the TAP docs.',
  },
  {
    flag: '--timeout',
    env: 'POLICY_TIMEOUT',
    value: 'DURATION',
    default: '30m',
    help: 'a hard bound on the whole run: 500ms, 10s, 5m, 1h, 1h30m or plain seconds',
    more:
      'It covers reading the files named here, connecting (through a proxy or not), every request and every ' +
      "wait. A wait longer than Node's timers allow (24.8 days) is clamped.",
  },
  {
    flag: '--poll-interval',
    env: 'POLICY_POLL_INTERVAL',
    value: 'DURATION',
    default: '5s',
    help: 'pause between polls while the store answers 404 (jittered by 20%)',
  },
  {
    flag: '--input',
    value: 'FILE',
    help: 'evaluate a saved GET /api/v1/images/{digest} body (- for stdin) instead of asking the store',
    more: 'A FIFO (`--input <(...)`) works; it is read within `--timeout` and `--max-body-size`.',
  },
  {
    flag: '--scan-result',
    env: 'POLICY_SCAN_RESULT',
    value: 'REF|auto|store',
    help:
      "evaluate the scanner's published results at REF (an OCI reference), or with auto those of the image's " +
      'ImageVulnerabilityScan, instead of asking the store',
    more:
      'See [Where the scan comes from](scan-sources.md#where-the-scan-comes-from). REF is what `status.scanResult` ' +
      'shows; ' +
      '`auto` runs in a pod and needs to read ImageVulnerabilityScans in its namespace. The store is not asked, so ' +
      "no token or `--url` is needed. `store` (or empty) asks the store, the default: a workload's way back from a " +
      'chain whose default is `auto`.',
  },
  {
    flag: '--scan-selector',
    env: 'POLICY_SCAN_SELECTOR',
    value: 'SELECTOR',
    help:
      'a label selector for the ImageVulnerabilityScans to look at (e.g. carto.run/workload-name=app), with ' +
      '--scan-result auto or while waiting for the store',
    more:
      "Without it every scan in the pod's namespace is listed and the image's is picked by its digest. Waiting " +
      'for the store in a pod whose service account may list scans, the progress lines say what the scan is doing. A ' +
      'fixed --scan-result or --input lists no scans, so the selector (which the template always passes) goes ' +
      'unused there.',
  },
  {
    flag: '--registry-config',
    env: 'POLICY_REGISTRY_CONFIG',
    value: 'FILE',
    defaultText: '$DOCKER_CONFIG/config.json if present',
    help:
      'Docker config (config.json or a .dockerconfigjson, as secret registry-credentials holds) with credentials ' +
      "for the scan results' registry",
    more:
      'Only `auths` entries are read (`auth`, or `username` and `password`); credential helpers cannot run in ' +
      'the image. Without credentials the registry is asked anonymously.',
  },
  {
    flag: '--registry-ca-cert',
    env: 'POLICY_REGISTRY_CA_CERT',
    value: 'FILE',
    help: "PEM file with the scan results' registry CA, trusted besides the default roots",
  },
  {
    flag: '--format',
    env: 'POLICY_FORMAT',
    value: 'FORMAT',
    choices: FORMATS,
    default: 'text',
    help: 'text is for people; json writes one document on stdout',
    more: 'The JSON schema is under [JSON output](outputs.md#json-output).',
  },
  {
    flag: '--results-dir',
    env: 'POLICY_RESULTS_DIR',
    value: 'DIR',
    help: 'also write Tekton results there, one file each (/tekton/results in a Task)',
    more:
      'See the results table above. An empty value or a folder that is not writable is a usage error (exit 2), ' +
      'found before any request.',
  },
  {
    flag: '--exemptions',
    env: 'POLICY_EXEMPTIONS',
    value: 'FILE',
    help: 'YAML exemptions (id, package, reason, expires, owner) that suppress matching findings until they expire',
    more: 'See [Exemptions](policy.md#exemptions).',
  },
  {
    flag: '--triage',
    env: 'POLICY_TRIAGE',
    help:
      "also suppress findings the scan's own triage marks not_affected, false_positive, resolved or " +
      "resolved_with_pedigree: the store's triage records, or a CycloneDX document's analysis",
    more:
      'The variable takes `true` or `false`. A KEV-listed finding stays blocking, as with exemptions that do not ' +
      'accept it; two analyses of one finding that disagree suppress nothing.',
  },
  {
    flag: '--newer-than',
    env: 'POLICY_NEWER_THAN',
    value: 'TIME',
    help:
      'wait until the store holds a scan report generated at or after TIME (RFC 3339, or a duration such as 2h ' +
      'before now)',
    more: 'A time that does not exist (hour 25, month 13, February 30, second 60) is refused (exit 2).',
  },
  {
    flag: '--only-fixed',
    env: 'POLICY_ONLY_FIXED',
    help: 'only findings with a known fix can block; the others are listed as not fixed',
    more:
      'A finding whose fix its source does not say (the Metadata Store, an older Grype, another producer) counts ' +
      'as fixable, and the summary says how many. The variable takes `true` or `false`.',
  },
  {
    flag: '--warn-at',
    env: 'POLICY_WARN_AT',
    value: 'LEVEL',
    choices: GATES,
    default: 'none',
    help:
      'report findings from this severity up that do not block as warnings (below the gate); the exit code is ' +
      'unchanged',
    more: 'See [Warnings](policy.md#warnings).',
  },
  {
    flag: '--kev',
    env: 'POLICY_KEV',
    value: 'FILE',
    help: "CISA's Known Exploited Vulnerabilities catalog (JSON): a finding it lists blocks at any severity",
    more:
      'See [Known-exploited vulnerabilities](policy.md#known-exploited-vulnerabilities). Never downloaded: mount ' +
      'a copy.',
  },
  {
    flag: '--vex',
    env: 'POLICY_VEX',
    value: 'PATH',
    repeatable: true,
    help:
      'an OpenVEX (v0.2.0) or CycloneDX VEX document, or a folder of them: not_affected and fixed statements about ' +
      'the image or a package suppress the finding',
    more:
      'Repeatable; the variable takes a comma-separated list. For several statements on one finding the latest ' +
      'wins. See [VEX](policy.md#vex).',
  },
  {
    flag: '--vex-accepts-kev',
    env: 'POLICY_VEX_ACCEPTS_KEV',
    help: 'let --vex statements suppress known-exploited findings too (without it, they stay blocking)',
    more: 'The variable takes `true` or `false`: the same explicit acceptance an exemption needs (`kev: accepted`).',
  },
  {
    flag: '--print-vex',
    env: 'POLICY_PRINT_VEX',
    help: "write the run's decisions (exemptions, triage, VEX) as an OpenVEX document on stdout; the summary on stderr",
    more:
      'The exit code is the verdict as ever. Give the document to Trivy or Grype (`--vex`), or back to the gate. ' +
      'See [VEX out](policy.md#vex-out).',
  },
  {
    flag: '--baseline',
    env: 'POLICY_BASELINE',
    value: 'IMAGE',
    help: 'the image running today (name@sha256:...): only findings new in the image checked, or worse, block',
    more: 'Read from the same source as the image. See [No new vulnerabilities](policy.md#no-new-vulnerabilities).',
  },
  {
    flag: '--baseline-input',
    env: 'POLICY_BASELINE_INPUT',
    value: 'FILE',
    help: "the baseline's saved document (a store body or CycloneDX), for --input or a fixed --scan-result",
  },
  {
    flag: '--scan-policy',
    env: 'POLICY_SCAN_POLICY',
    value: 'FILE',
    help:
      "a Scan 1.0 ScanPolicy (YAML) whose Rego is one of TAP's templates: its severities give the gate, its " +
      'ignored CVEs exemptions',
    more: 'Flags and variables given win over it. See [From Scan 1.0](policy.md#from-scan-10-scanpolicies).',
  },
  {
    flag: '--print-exemptions',
    help: 'with --scan-policy: write the equivalent exemptions YAML and gate on stdout, and exit',
  },
  {
    flag: '--fail-on-score',
    env: 'POLICY_FAIL_ON_SCORE',
    value: 'N',
    help: 'also fail on any rating whose CVSS score is at least N (0 to 10)',
  },
  {
    flag: '--unknown-as',
    env: 'POLICY_UNKNOWN_AS',
    value: 'SEVERITY',
    choices: UNKNOWN_AS,
    default: 'ignore',
    help: 'what a vulnerability without a known severity counts as',
  },
  {
    flag: '--mode',
    env: 'POLICY_MODE',
    value: 'MODE',
    choices: MODES,
    default: 'enforce',
    help: 'audit evaluates and reports the same, but exits 0 and says plainly that the gate would have failed',
  },
  {
    flag: '--report-file',
    env: 'POLICY_REPORT_FILE',
    value: 'PATH',
    help: 'also write a machine report to PATH',
    more:
      'An empty value, a folder, a path ending in `/` or a missing or unwritable folder is a usage error (exit ' +
      '2), found before any request.',
  },
  {
    flag: '--report-format',
    env: 'POLICY_REPORT_FORMAT',
    value: 'FORMAT',
    choices: REPORT_FORMATS,
    defaultText: 'from the file name: .sarif and .sarif.json sarif, .xml junit, else json',
    help: 'JSON (the --format json document), SARIF 2.1.0 for code-scanning dashboards, or JUnit XML for CI test views',
  },
  {
    flag: '--attest',
    env: 'POLICY_ATTEST',
    help:
      'after the verdict, sign it as an in-toto attestation (SLSA verification summary) and push it beside the ' +
      'image, where cosign and the policy-controller look',
    more:
      'The variable takes `true` or `false`. Needs --attest-key and the image as registry/repository@sha256:..., and ' +
      'push access to its repository (--registry-config). A push that fails exits 3 (ATTESTATION_NOT_PUSHED) after ' +
      'the verdict. See [Enforce at admission](admission.md).',
  },
  {
    flag: '--attest-key',
    env: 'POLICY_ATTEST_KEY',
    value: 'FILE',
    help: "the signing key: cosign generate-key-pair's cosign.key (password in COSIGN_PASSWORD) or a PKCS#8 PEM, P-256",
    more: 'Read and decrypted before any request: a key that cannot be read or decrypted is exit 2.',
  },
  {
    flag: '--max-body-size',
    env: 'POLICY_MAX_BODY_SIZE',
    value: 'SIZE',
    default: '24MiB',
    help: 'a larger answer (or --input) ends with exit 3: bytes, or with KiB, MiB, GiB, KB, MB, GB',
    more:
      "Real reports are a few MB; the default is what the Task's 512Mi evaluates with room to spare " +
      "([Memory](operations.md#memory)). Raise it together with the step's memory.",
  },
  { flag: '--help', help: 'show this help and exit, whatever else is given' },
  { flag: '--version', help: 'show the version' },
] as const satisfies readonly OptionSpec[]

export type Flag = (typeof OPTION_TABLE)[number]['flag']
export const OPTIONS: readonly OptionSpec[] = OPTION_TABLE

/** --help's sections: every option in one (a test holds it), in the order a reader looks for them. */
export const OPTION_GROUPS: ReadonlyArray<readonly [title: string, flags: readonly Flag[]]> = [
  [
    'Where the scan comes from',
    [
      '--url',
      '--token-file',
      '--ca-cert',
      '--poll-interval',
      '--input',
      '--scan-result',
      '--scan-selector',
      '--registry-config',
      '--registry-ca-cert',
    ],
  ],
  [
    'Policy',
    [
      '--gate',
      '--mode',
      '--exemptions',
      '--triage',
      '--newer-than',
      '--only-fixed',
      '--warn-at',
      '--kev',
      '--vex',
      '--vex-accepts-kev',
      '--print-vex',
      '--baseline',
      '--baseline-input',
      '--scan-policy',
      '--print-exemptions',
      '--fail-on-score',
      '--unknown-as',
    ],
  ],
  [
    'Output',
    [
      '--format',
      '--results-dir',
      '--report-file',
      '--report-format',
      '--attest',
      '--attest-key',
      '--help',
      '--version',
    ],
  ],
  ['Limits and network', ['--timeout', '--max-body-size']],
]

/** Variables read without a flag of their own. */
export const ENVIRONMENT: ReadonlyArray<{ readonly name: string; readonly help: string }> = [
  {
    name: 'ACCESS_TOKEN',
    help:
      'the bearer token itself, when no token file is given (as the seed Task passes it from secret ' +
      'metadata-store-access-token)',
  },
  {
    name: 'HTTPS_PROXY',
    help:
      'a proxy for the store (https_proxy, HTTP_PROXY and http_proxy too), with NO_PROXY; an http:// or https:// ' +
      'URL or exit 2',
  },
  {
    name: 'DOCKER_CONFIG',
    help:
      "a folder whose config.json holds the credentials for --scan-result's registry, as docker login writes it " +
      '(the Task mounts secret registry-credentials there)',
  },
  {
    name: 'KUBERNETES_SERVICE_HOST',
    help:
      "with KUBERNETES_SERVICE_PORT, the Kubernetes API a pod sees: --scan-result auto and the store's progress " +
      'lines read ImageVulnerabilityScans there',
  },
  {
    name: 'POLICY_SERVICE_ACCOUNT_DIR',
    help: `where the pod's service-account token, ca.crt and namespace are (default ${DEFAULT_SERVICE_ACCOUNT_DIR})`,
  },
  {
    name: 'COSIGN_PASSWORD',
    help: "the password of --attest-key when it is cosign's encrypted key (empty when unset, as cosign takes it)",
  },
  {
    name: 'NO_COLOR',
    help: 'no colour in the summary (there is none either when stdout is not a terminal, or TERM=dumb)',
  },
]

export const SEVERITY_RANK: Record<Severity, number> = { unknown: 0, low: 1, medium: 2, high: 3, critical: 4 }
export const SEVERITY_NAMES: ReadonlyMap<string, Severity> = new Map([
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
/**
 * Why a finding blocks: its severity, --unknown-as, --fail-on-score, or CISA's KEV catalog; warn-at marks a warning
 * only.
 */
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
  /** The package's purl as the scan writes it: kept for findings a VEX statement speaks of, and for --print-vex. */
  readonly purl?: string
  /** What --vex says of a finding it does not suppress: affected (with the action), under investigation, conflict. */
  readonly vex?: VexVerdict
}

/** The latest --vex statement about a finding (VEX beside the scan), or `conflicting` statements of the same time. */
export interface VexVerdict {
  readonly status: 'not_affected' | 'affected' | 'fixed' | 'under_investigation' | 'conflicting'
  /** `FILE, statement N`: where the statement is. */
  readonly source: string
  readonly justification?: string
  readonly impact?: string
  /** An affected statement's action statement (CycloneDX: its responses and detail). */
  readonly action?: string
  readonly author?: string
  /** Why conflicting. */
  readonly detail?: string
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
 * other producers). docs/policy.md, "Straight from the scanner", has the rule per producer.
 */
export type FixState =
  | { readonly state: 'fixed'; readonly version: string }
  | { readonly state: 'not-fixed' }
  | { readonly state: 'unknown' }

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
  | ({ readonly kind: 'vex' } & VexVerdict)

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
  /** --triage: a scan document's own analysis of a finding (not_affected, false_positive, resolved) suppresses it. */
  readonly documentTriage?: boolean
  /** --vex: the latest statement about a finding (by ID, purl or package name and version), if any. */
  readonly vex?: (id: string, purl: string, name: string, version: string) => VexVerdict | undefined
  /** --vex-accepts-kev: a not_affected or fixed statement suppresses a known-exploited finding too. */
  readonly vexAcceptsKev?: boolean
  /** How many --vex statements were read, for the summary. */
  readonly vexStatements?: number
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
  /** Known-exploited findings a --vex statement would suppress, not applied without --vex-accepts-kev. */
  readonly vexNotAccepted: readonly Finding[]
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
  /**
   * Findings whose fix the source does not say (the store, older Grype, other producers): --only-fixed lets them block.
   */
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
  /** --vex: OpenVEX or CycloneDX VEX files, and folders of them. */
  readonly vexFiles?: readonly string[]
  readonly vexAcceptsKev?: boolean
  /** --print-vex: the decisions as OpenVEX on stdout, the summary on stderr. */
  readonly printVex?: boolean
  /** --attest: sign the verdict and push it beside the image, with this key and the registry's credentials. */
  readonly attest?: AttestSettings
  /** The Scan 1.0 ScanPolicy the gate, unknown-as and exemptions came from (flags given win). */
  readonly scanPolicy?: ScanPolicyImport
  /** The running image: only findings new in the checked image, or worse, block. */
  readonly baseline?: { readonly image?: ImageRef; readonly input?: string }
  /** A label selector for the ImageVulnerabilityScans listed (--scan-result auto, and the store's progress lines). */
  readonly scanSelector?: string
  /** Tekton results are written here, one file per result. */
  readonly resultsDir?: string
  /** Where the Image document comes from: a saved file, or the store. Absent for gate none. */
  readonly source?:
    { readonly input: string } | { readonly store: StoreSource } | { readonly scanResult: ScanResultSource }
}

/** Where a registry's credentials and CA come from, and how it is asked: for scan results and for --attest. */
export interface RegistryFiles {
  /** The Docker config with the registry's credentials, and the registry's CA. */
  readonly registryConfig?: { readonly file: string; readonly origin: string }
  readonly registryCa?: { readonly file: string; readonly origin: string }
  readonly pollIntervalMs: number
  readonly proxied: boolean
}

/** --attest: the key, and the image's registry and repository, where the attestation goes. */
export interface AttestSettings extends RegistryFiles {
  readonly key: { readonly file: string; readonly origin: string }
  readonly target: OciRef
}

/** The scanner's published results: at a reference, or those of the image's ImageVulnerabilityScan (auto). */
export interface ScanResultSource extends RegistryFiles {
  readonly ref: OciRef | 'auto'
}

// ---------------------------------------------------------------------------------------------
// Errors: branch on `code`, never on the message.

/** A usage error's code: the JSON report's error.code on exit 2, listed in docs/outputs.md. */
export const USAGE_CODES = [
  'RUNTIME',
  'OPTION',
  'IMAGE',
  'GATE',
  'FORMAT',
  'MODE',
  'REPORT_FORMAT',
  'UNKNOWN_AS',
  'DURATION',
  'SIZE',
  'BOOLEAN',
  'SCORE',
  'TIME',
  'URL',
  'PROXY',
  'TOKEN',
  'CA',
  'INSECURE_TLS',
  'FILE',
  'INPUT',
  'EXEMPTIONS',
  'REPORT_FILE',
  'RESULTS_DIR',
  'SCAN_RESULT',
  'REGISTRY_CONFIG',
  'KUBERNETES',
  'WARN_AT',
  'KEV',
  'BASELINE',
  'SCAN_POLICY',
  'VEX',
  'ATTEST',
  'ATTEST_KEY',
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

/** Why there is no verdict: the JSON report's error.code, listed in docs/outputs.md. */
export const NO_VERDICT_CODES = [
  'TIMEOUT',
  'TOKEN_REJECTED',
  'TLS',
  'DNS',
  'MALFORMED_RESPONSE',
  'BODY_TOO_LARGE',
  'STORE_ERROR',
  'RESULTS_NOT_WRITTEN',
  'REGISTRY_REJECTED',
  'REGISTRY_ERROR',
  'DIGEST_MISMATCH',
  'NO_SCAN_FILE',
  'SCAN_FAILED',
  'KUBERNETES_ERROR',
  'ATTESTATION_NOT_PUSHED',
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

/** What a Scan 1.0 ScanPolicy says, in the gate's terms. */
export interface ScanPolicyImport {
  readonly name: string
  /**
   * Which documented template, by the rule Scan 1.0 judged ratings with (Grype's any-rating rule, Trivy's every-rating
   * rule).
   */
  readonly template: 'grype' | 'trivy'
  /**
   * TAP's "further refine" variants of the Grype template: ignoreCves as objects with `detail`, or also `expiration`.
   */
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
 * The store's and CycloneDX's own spellings, looked up before any trimming or lower-casing (the hot path of evaluate).
 */
export const STORE_SEVERITIES: ReadonlyMap<string, Severity> = new Map(
  [...SEVERITY_NAMES].flatMap(
    ([name, severity]) =>
      [
        [name, severity],
        [`${name[0]!.toUpperCase()}${name.slice(1)}`, severity],
      ] as const,
  ),
)

export function normaliseSeverity(raw: unknown): Severity {
  if (typeof raw !== 'string') return 'unknown'
  return STORE_SEVERITIES.get(raw) ?? SEVERITY_NAMES.get(raw.trim().toLowerCase()) ?? 'unknown'
}

/**
 * A vulnerability's ratings, one at a time: the highest severity and CVSS score, and every severity as bits (what Scan
 * 1.0's rules looked at).
 */
export interface RatingTally {
  severity: Severity
  score: number | null
  severities: number
}

export const newTally = (): RatingTally => ({ severity: 'unknown', score: null, severities: 0 })

/** The tally back to none for the next vulnerability: one object per walk, not one per vulnerability (hot loop). */
export function resetTally(tally: RatingTally): RatingTally {
  tally.severity = 'unknown'
  tally.score = null
  tally.severities = 0
  return tally
}

export function addRating(tally: RatingTally, severity: Severity, score: number | null): void {
  if (SEVERITY_RANK[severity] > SEVERITY_RANK[tally.severity]) tally.severity = severity
  tally.severities |= 1 << SEVERITY_RANK[severity]
  if (score !== null && (tally.score === null || score > tally.score)) tally.score = score
}

/** Two tallies of one vulnerability as one (a pair the document names twice). */
export function mergeTally(into: RatingTally, from: RatingTally): void {
  if (SEVERITY_RANK[from.severity] > SEVERITY_RANK[into.severity]) into.severity = from.severity
  into.severities |= from.severities
  if (from.score !== null && (into.score === null || from.score > into.score)) into.score = from.score
}

export function isAtOrAbove(severity: Severity, gate: Gate): boolean {
  return gate !== 'none' && severity !== 'unknown' && SEVERITY_RANK[severity] >= SEVERITY_RANK[gate]
}

/** One finding, as a reader found it: the vulnerability, its severity and best score, the package, the fix. */
/**
 * A scan document's own decision on a finding (CycloneDX `vulnerabilities[].analysis`, VEX inside the scan): its
 * state as written (lower case), and why. Two decisions on one pair that disagree are `conflicting`.
 */
export interface Analysis {
  readonly state: string
  readonly justification?: string
  readonly detail?: string
}

export type JudgeFinding = (
  id: string,
  severity: Severity,
  score: number | null,
  packageName: string,
  packageVersion: string,
  fix: FixState,
  kevRated: boolean,
  severities: number,
  analysis?: Analysis,
  /** The package's purl, or '' when the source writes none (the store). */
  purl?: string,
) => void

export interface Environment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly fileExists: (path: string) => boolean
  readonly isDirectory: (path: string) => boolean
  readonly isWritableDirectory: (path: string) => boolean
}

/**
 * undici and yaml are CommonJS: the chunks esbuild splits them into (build.mjs), like Node itself, export
 * their module.exports as the default export only. Unbundled (the tests), the names are there too.
 */
export async function importCommonJs<T>(module: Promise<T>): Promise<T> {
  const loaded = (await module) as T & { default?: T }
  return loaded.default ?? loaded
}
