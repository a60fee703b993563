import { escapeControls, redact, redactSummary } from './safe-text.ts'
import { NAME } from './vocabulary.ts'
import type { Config, Environment, ImageRef } from './vocabulary.ts'

export interface BodyLimits {
  readonly maxBytes: number
  readonly tooLarge: () => Error
  /** For JSON bodies: refuse one that would not fit in memory, naming it. */
  readonly json?: { readonly what: string; readonly available: () => number }
}

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
  readonly get: (
    url: URL,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
    limits: BodyLimits,
  ) => Promise<RawResponse>
  /**
   * One GET whose 200 body is a stream of lines (a Kubernetes watch): each line goes to `onLine` as it
   * arrives, until it returns false, the server ends the stream, or the signal aborts. A line longer than
   * `limits.maxBytes` ends it with limits.tooLarge(). Another status comes back with its body, as from get.
   */
  readonly lines: (
    url: URL,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
    limits: BodyLimits,
    onLine: (line: string) => boolean,
  ) => Promise<RawResponse>
  /** Any other request (a registry upload): the body sent as it is, the answer's body read within `limits`. */
  readonly send: (
    method: 'HEAD' | 'POST' | 'PUT',
    url: URL,
    headers: Readonly<Record<string, string>>,
    body: Buffer | undefined,
    signal: AbortSignal,
    limits: BodyLimits,
  ) => Promise<RawResponse>
  readonly close: () => Promise<void>
}

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly stdin: NodeJS.ReadableStream
  readonly isTTY: boolean
  /** The terminal's width, when stdout is one: --help wraps to it (80 otherwise). */
  readonly columns?: number
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
  /**
   * A client for one endpoint (the store, the Kubernetes API, a registry): undici, or in tests anything that answers
   * like them.
   */
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
  /** A folder's files, sorted, hidden ones left out (a ConfigMap's ..data); undefined when the path is no folder. */
  readonly list: (path: string) => readonly string[] | undefined
}

/** What one run writes to: stdout and stderr, redacted of the secrets it learns on the way. */
export interface Output {
  readonly secrets: string[]
  /** Text for a person: redacted, but for the summary's verdict line. */
  readonly stdout: (text: string) => void
  /** The same on stderr, when stdout carries a document (--print-vex). */
  readonly stderr: (text: string) => void
  /** JSON already redacted by value (redactReport): written as it is, so that it stays JSON. */
  readonly json: (text: string) => void
  /** One line on stderr with the tool's name; a store's words quoted in it are shown escaped. */
  readonly say: (line: string) => void
}

export function outputFor(io: Io): Output {
  const secrets: string[] = []
  return {
    secrets,
    stdout: (text) => io.stdout(redactSummary(text, secrets)),
    stderr: (text) => io.stderr(redactSummary(text, secrets)),
    json: (text) => io.stdout(text),
    say: (line) => io.stderr(redact(`${NAME}: ${escapeControls(line)}\n`, secrets)),
  }
}

/**
 * One run, passed whole to each of its steps: what was asked, the run in progress, where it speaks, the outside world.
 */
export interface RunContext {
  readonly config: Config
  readonly run: Run
  readonly output: Output
  readonly io: Io
}

/** One run in progress: when it started, the deadline every wait races, what it is doing, the client to close. */
export interface Run {
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
