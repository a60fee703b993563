// Shared by every test file (vitest setupFiles): fails any test whose captured output holds a test token.
import { afterEach, expect } from 'vitest'
import { capturedOutputs } from './gate.ts'
import { SERVICE_ACCOUNT_TOKEN } from './kubernetes.ts'
import { REGISTRY_PASSWORD } from './registry.ts'
import { TEST_TOKEN } from './simulator.ts'

afterEach(() => {
  const leaks = capturedOutputs.filter((output) =>
    [TEST_TOKEN, REGISTRY_PASSWORD, SERVICE_ACCOUNT_TOKEN].some((secret) => output.includes(secret)),
  )
  capturedOutputs.length = 0
  expect(leaks, 'a token or password appeared in the output of a gate run').toEqual([])
})
