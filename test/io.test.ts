// gate/io.ts: where a run speaks. Every line on stderr is the gate's, escaped, and nothing said carries a secret
// the run holds, in the summary or the log.
import { describe, expect, it } from 'vitest'
import { outputFor, type Io } from '../gate/io.ts'

describe("a run's output", () => {
  it('redacts the secrets it learns from then on, escapes control characters, and names the gate on each line', () => {
    const [out, err]: [string[], string[]] = [[], []]
    const output = outputFor({
      stdout: (text: string) => out.push(text),
      stderr: (text: string) => err.push(text),
    } as unknown as Io)
    output.secrets.push('a-token-of-twenty-chars')
    output.say('sent a-token-of-twenty-chars\u001b[31m')
    output.stdout('summary: a-token-of-twenty-chars\n')
    expect(err.join('')).toBe('amr-policy-gate: sent [redacted]\\x1b[31m\n')
    expect(out.join('')).not.toContain('a-token-of-twenty-chars')
  })
})
