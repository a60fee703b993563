// gate/files.ts: configuration files read as data, every failure a usage error naming the file.
import { describe, expect, it } from 'vitest'
import { parseYamlConfig } from '../gate/files.ts'
import { parseJsonConfig } from '../gate/json.ts'
import type { Io } from '../gate/io.ts'
import { UsageError } from '../gate/vocabulary.ts'

const io = { blocking: <T>(work: () => T) => work() } as unknown as Io

describe('configuration files', () => {
  it('reads every YAML document of a file', async () => {
    expect(await parseYamlConfig('a: 1\n---\nb: [2]\n', 'f.yaml', 'EXEMPTIONS', 'as exemptions', io)).toEqual([
      { a: 1 },
      { b: [2] },
    ])
  })

  it.each([
    ['broken YAML, naming the line', 'a: [\n', /f\.yaml: not valid YAML at line \d+/],
    ['a duplicate key', 'a: 1\na: 2\n', /f\.yaml: not valid YAML at line 2: Map keys must be unique/],
    [
      'an alias bomb',
      `a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [${'*b, '.repeat(20)}*b]\n`,
      /f\.yaml: cannot be read as exemptions \(Excessive alias count/,
    ],
  ])('refuses %s', async (_name, text, message) => {
    await expect(parseYamlConfig(text, 'f.yaml', 'EXEMPTIONS', 'as exemptions', io)).rejects.toThrow(message)
    await expect(parseYamlConfig(text, 'f.yaml', 'EXEMPTIONS', 'as exemptions', io)).rejects.toBeInstanceOf(UsageError)
  })

  it('reads JSON, and says what to give when it is not JSON', () => {
    expect(parseJsonConfig('\ufeff{"auths": {}}', 'REGISTRY_CONFIG', 'give JSON')).toEqual({ auths: {} })
    expect(() => parseJsonConfig('auths:', 'KEV', "give CISA's catalog")).toThrow(
      new UsageError('KEV', "give CISA's catalog"),
    )
  })
})
