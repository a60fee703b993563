// One store simulator per test and the gate run against it the way the Task runs it, for black-box tests.
import { afterEach, beforeAll } from 'vitest'
import { runGate, writeFiles, type GateRun } from './gate.ts'
import { SAMPLE_DIGEST, SAMPLE_IMAGE } from './documents.ts'
import {
  makeTls,
  startSimulator,
  storeHandlers,
  TEST_TOKEN,
  type Answer,
  type Simulator,
  type StoreContent,
  type Tls,
} from './simulator.ts'

export interface StoreFixture {
  readonly tls: Tls
  /** caCrt, other-ca.crt (a CA that did not sign the store), token. */
  readonly files: Record<string, string>
  readonly store: Simulator
  /** Starts the simulator; the image answers are for SAMPLE_DIGEST. */
  serve(images: Answer[], content?: Partial<StoreContent>): Promise<Simulator>
  /**
   * The gate with the Task's settings in the environment (CA and token from files), then `env`, `args` and the image.
   */
  gate(args?: string[], env?: Record<string, string>): Promise<GateRun>
}

/** Registers the hooks of a test file: certificates once, the simulator closed after each test. */
export function useStoreFixture(): StoreFixture {
  let current: Simulator | undefined
  let tls: Tls | undefined
  const fixture = {
    get tls(): Tls {
      if (!tls) throw new Error('the certificates are made in beforeAll')
      return tls
    },
    files: {} as Record<string, string>,
    get store(): Simulator {
      if (!current) throw new Error('serve() first')
      return current
    },
    async serve(images: Answer[], content: Partial<StoreContent> = {}) {
      current = await startSimulator(
        storeHandlers({ token: TEST_TOKEN, ...content, images: { [SAMPLE_DIGEST]: images, ...content.images } }),
        fixture.tls,
      )
      return current
    },
    gate(args: string[] = [], env: Record<string, string> = {}) {
      return runGate([...args, SAMPLE_IMAGE], {
        env: {
          GATE: 'high',
          METADATA_STORE_URL: fixture.store.hostPort,
          ACCESS_TOKEN_FILE: fixture.files.token!,
          METADATA_STORE_CA_CERT: fixture.files.caCrt!,
          POLICY_POLL_INTERVAL: '100ms',
          ...env,
        },
      })
    },
  }
  beforeAll(async () => {
    tls = await makeTls()
    const otherCa = await makeTls('Some Other CA')
    fixture.files = writeFiles({ caCrt: fixture.tls.caCert, 'other-ca.crt': otherCa.caCert, token: `${TEST_TOKEN}\n` })
  })
  afterEach(async () => {
    await current?.close()
    current = undefined
  })
  return fixture
}
