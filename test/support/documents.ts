// The documents the tests share: Image bodies (the reference sample, a clean one, builders for small ones),
// the store's triage and report records, and exemption files. One place, so that no test file keeps a copy.
import { readFileSync } from 'node:fs'

export const SAMPLE_DIGEST = 'sha256:a24a8d8eb724b6816f244925cc6625a84c15f6ced6a19335121343424be693cd'
export const SAMPLE_IMAGE = `registry.example.com/tap/workloads/tanzu-java-web-app-dev@${SAMPLE_DIGEST}`

/** The realistic Image body of the API notes: 5 CVEs, 2 of them critical. */
export function sampleImageBody(): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL('../fixtures/image-sample.json', import.meta.url), 'utf8'))
}

/** The same image with every vulnerability fixed. */
export function cleanImageBody(): Record<string, unknown> {
  const body = sampleImageBody()
  for (const pkg of body.Packages as Array<Record<string, unknown>>) pkg.Vulnerabilities = []
  return body
}

/**
 * Builders for small Image documents in the store's shape: image(pkg(name, version, vuln(id, rating(severity,
 * score)))).
 */
export const rating = (Severity: unknown, Score: unknown = 0) => ({ Severity, Score })
export const vuln = (CVEID: string, ...Ratings: unknown[]) => ({ CVEID, Ratings })
export const pkg = (Name: string, Version: string, ...Vulnerabilities: unknown[]) => ({
  Name,
  Version,
  Vulnerabilities,
})
export const image = (...Packages: unknown[]) => ({ Digest: SAMPLE_DIGEST, Packages })

/** A triage record as GET /api/v1/triage returns it (TAP 1.7 API, alpha). */
export function triageRecord(
  cveId: string,
  pkg: { Name: string; Version: string },
  state: string,
  justification = '',
): Record<string, unknown> {
  return {
    UID: `triage-${cveId}-${pkg.Name}`,
    image: { Digest: SAMPLE_DIGEST, Name: 'tap/workloads/tanzu-java-web-app-dev', Registry: 'registry.example.com' },
    package: { ...pkg, PackageManager: 'deb' },
    vulnerability: { CVEID: cveId, Description: '' },
    Analysis: [
      { State: 'in_triage', Justification: '', Response: [], Comments: '', CreatedBy: 'alice' },
      { State: state, Justification: justification, Response: [], Comments: '', CreatedBy: 'bob' },
    ],
  }
}

/** A scan report as GET /api/v1/reports lists it. */
export function scanReport(generatedAt: string): Record<string, unknown> {
  return {
    UID: `report-${generatedAt}`,
    GeneratedAt: generatedAt,
    OriginalLocation: 'registry.example.com/scans@sha256:0',
    tool: { Name: 'grype', Vendor: 'anchore', Version: '0.80.0' },
  }
}

/** A day as an exemption's `expires` writes it, `days` from today (UTC). */
export const inDays = (days: number): string => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10)

/**
 * Exemption files for the sample: a team's file (one entry per rule: scoped to a package, expiring today,
 * expired yesterday, stale), one with an impossible date, and one that is not YAML.
 */
export function exemptionFiles(): Record<string, string> {
  return {
    'exemptions.yaml': `# kept in git by team-a
exemptions:
  - id: CVE-2021-44228
    package: org.apache.logging.log4j:log4j-core
    reason: JNDI lookups disabled by log4j2.formatMsgNoLookups
    expires: ${inDays(60)}
    owner: team-a
  - id: CVE-2021-45046
    reason: same mitigation as CVE-2021-44228
    expires: ${inDays(0)}
  - id: CVE-2023-0464
    reason: policy constraints are not used
    expires: ${inDays(-1)}
  - id: CVE-2099-0001
    reason: left over from an old base image
    expires: ${inDays(100)}
`,
    'broken.yaml': `exemptions:\n  - id: CVE-2021-44228\n    reason: r\n    expires: next week\n`,
    'not-yaml.yaml': `exemptions: [\n`,
    'two-documents.yaml':
      `exemptions: []\n---\nexemptions:\n  - id: CVE-2021-44228\n    reason: r\n    expires: ` + `2099-01-01\n`,
  }
}

/**
 * A small CycloneDX that names the image it scanned (as Trivy's RepoDigest property does): one CVE of openssl, fixed in
 * 3.0.15.
 */
export function cycloneDxOf(digest: string, severity = 'critical'): string {
  return JSON.stringify({
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    metadata: {
      component: {
        'bom-ref': 'image',
        type: 'container',
        name: 'app',
        properties: [{ name: 'aquasecurity:trivy:RepoDigest', value: `registry.example.com/app@${digest}` }],
      },
    },
    components: [{ 'bom-ref': 'pkg:deb/openssl', name: 'openssl', version: '3.0.2' }],
    vulnerabilities: [
      {
        id: 'CVE-2024-9999',
        ratings: [{ severity }],
        affects: [{ ref: 'pkg:deb/openssl' }],
        recommendation: 'Upgrade openssl to version 3.0.15',
      },
    ],
  })
}
