// gate/run.ts, the parts of a run's steps that stand alone (test/policy.test.ts runs main whole): the runtime
// check, an option read before the options parse, and audit mode's line.
import { describe, expect, it } from 'vitest'
import { auditLine, checkRuntime, rawOption } from '../gate/run.ts'
import { EXIT, UsageError } from '../gate/vocabulary.ts'

describe('the steps of a run', () => {
  it('runs on Node 24 and later, and says which it needs otherwise', () => {
    expect(() => checkRuntime('24.1.0')).not.toThrow()
    expect(() => checkRuntime('26.0.0')).not.toThrow()
    expect(() => checkRuntime('20.19.5')).toThrow(UsageError)
    expect(() => checkRuntime('20.19.5')).toThrow(/needs Node 24 or later; this is Node 20\.19\.5/)
  })

  it('finds an option in either spelling, before --, else in its variable', () => {
    const env = { POLICY_RESULTS_DIR: '/from-env' }
    expect(rawOption(['--results-dir', '/a', 'img'], env, '--results-dir', 'POLICY_RESULTS_DIR')).toBe('/a')
    expect(rawOption(['--results-dir=/b'], env, '--results-dir', 'POLICY_RESULTS_DIR')).toBe('/b')
    expect(rawOption(['--', '--results-dir', '/c'], env, '--results-dir', 'POLICY_RESULTS_DIR')).toBe('/from-env')
  })

  it('says in audit mode what enforcement would have done', () => {
    expect(auditLine(EXIT.VIOLATION)).toBe(
      'AUDIT: the gate would have failed here (exit 1, policy violated); --mode audit lets the pipeline go on',
    )
    expect(auditLine(EXIT.USAGE)).toContain('(exit 2, configuration error)')
    expect(auditLine(EXIT.NO_VERDICT)).toContain('(exit 3, no verdict)')
  })
})
