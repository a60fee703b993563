// Realistic synthetic GET /api/v1/images/{digest} bodies for the benchmark: thousands of packages, a few
// vulnerabilities each with two or three ratings, in the store's PascalCase shape (as in the API notes'
// sample: MethodType objects, references, null back-references). Deterministic for a given size.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'

export const BENCH_DIGEST = 'sha256:a24a8d8eb724b6816f244925cc6625a84c15f6ced6a19335121343424be693cd'
const SEVERITIES = ['Critical', 'High', 'Medium', 'Low', 'Negligible']
const MANAGERS = ['deb', 'maven', 'npm', 'go', 'pypi']

function random(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
    return seed / 2 ** 31
  }
}

function methodType(): Record<string, unknown> {
  return {
    ID: 0,
    CreatedAt: '0001-01-01T00:00:00Z',
    UpdatedAt: '0001-01-01T00:00:00Z',
    DeletedAt: null,
    Name: '',
    Rating: null,
  }
}

/** An Image document of about `bytes` bytes once serialised. */
export function syntheticImage(bytes: number): { json: string; packages: number; vulnerabilities: number } {
  const next = random(42)
  const packages: unknown[] = []
  let size = 200
  let vulnerabilities = 0
  let id = 1
  while (size < bytes) {
    const vulns = Array.from({ length: 1 + Math.floor(next() * 4) }, () => {
      const cve = `CVE-${2015 + Math.floor(next() * 11)}-${10_000 + Math.floor(next() * 40_000)}`
      const ratings = Array.from({ length: 2 + Math.floor(next() * 2) }, (_, r) => ({
        ID: id++,
        MethodTypeID: [4, 1, 6][r],
        MethodType: methodType(),
        Score: Math.round(next() * 100) / 10,
        Severity: SEVERITIES[Math.floor(next() * SEVERITIES.length)],
        Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      }))
      vulnerabilities++
      return {
        ID: id++,
        CVEID: cve,
        CNA: 'NVD',
        Description:
          `A flaw was found in the parser that allows a remote attacker to cause a denial of service via ` +
          `crafted input (${cve}).`,
        URL: `https://nvd.nist.gov/vuln/detail/${cve}`,
        References: [`https://security-tracker.debian.org/tracker/${cve}`],
        Packages: null,
        Ratings: ratings,
      }
    })
    const pkg = {
      ID: id++,
      Name: `lib${packages.length}-${Math.floor(next() * 1e6).toString(36)}`,
      Version: `${1 + Math.floor(next() * 5)}.${Math.floor(next() * 20)}.${Math.floor(next() * 10)}`,
      PackageManager: MANAGERS[Math.floor(next() * MANAGERS.length)],
      Homepage: '',
      Images: null,
      Sources: null,
      Vulnerabilities: vulns,
    }
    size += JSON.stringify(pkg).length + 1
    packages.push(pkg)
  }
  const json = JSON.stringify({
    ID: 137,
    Registry: 'registry.example.com',
    Name: 'tap/workloads/bench',
    Digest: BENCH_DIGEST,
    Sources: null,
    Packages: packages,
  })
  return { json, packages: packages.length, vulnerabilities }
}

/** Writes bench/data/image-<N>mb.json when missing; returns its path. */
export function ensureBody(megabytes: number): string {
  const dir = new URL('./data/', import.meta.url).pathname
  const path = `${dir}image-${megabytes}mb.json`
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(path, syntheticImage(megabytes * 1_000_000).json)
  }
  return path
}

/** Bodies built to cost the most memory per byte: the shapes the gate's estimate must refuse before JSON.parse. */
export const HOSTILE_SHAPES = {
  'empty objects': (bytes: number) =>
    `{"Digest":"${BENCH_DIGEST}","Packages":[${'{},'.repeat(Math.floor(bytes / 3))}{}]}`,
  'minimal findings': (bytes: number) =>
    `{"Digest":"${BENCH_DIGEST}","Packages":[{"Name":"p","Vulnerabilities":[${'{"CVEID":"C","Ratings":[{"Severity":"High"}]},'.repeat(Math.floor(bytes / 45))}{}]}]}`,
} as const

/** Writes bench/data/<shape>-<N>mb.json when missing; returns its path. */
export function ensureHostileBody(shape: keyof typeof HOSTILE_SHAPES, megabytes: number): string {
  const dir = new URL('./data/', import.meta.url).pathname
  const path = `${dir}${shape.replace(/ /g, '-')}-${megabytes}mb.json`
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(path, HOSTILE_SHAPES[shape](megabytes * 1_000_000))
  }
  return path
}

/** The same synthetic scan as CycloneDX (Trivy's shape: components with bom-refs, vulnerabilities with ratings,
 * recommendations and affects), about `megabytes` MB; writes bench/data/image-<N>mb.cdx.json when missing. */
export function ensureCycloneDx(megabytes: number): string {
  const dir = new URL('./data/', import.meta.url).pathname
  const path = `${dir}image-${megabytes}mb.cdx.json`
  if (existsSync(path)) return path
  const image = JSON.parse(syntheticImage(megabytes * 1_000_000).json) as {
    Packages: Array<{
      Name: string
      Version: string
      Vulnerabilities: Array<{
        CVEID: string
        Description: string
        Ratings: Array<{ Severity: string; Score: number; Vector: string }>
      }>
    }>
  }
  const components = image.Packages.map((pkg) => ({
    'bom-ref': `pkg:generic/${pkg.Name}@${pkg.Version}`,
    type: 'library',
    name: pkg.Name,
    version: pkg.Version,
  }))
  const vulnerabilities = image.Packages.flatMap((pkg) =>
    pkg.Vulnerabilities.map((vulnerability, index) => ({
      id: vulnerability.CVEID,
      source: { name: 'nvd' },
      ratings: vulnerability.Ratings.map((rating, r) => ({
        source: { name: ['nvd', 'debian', 'ghsa'][r] },
        score: rating.Score,
        severity: rating.Severity.toLowerCase(),
        method: 'CVSSv31',
        vector: rating.Vector,
      })),
      description: vulnerability.Description,
      ...(index % 2 ? { recommendation: `Upgrade ${pkg.Name} to version ${pkg.Version}.1` } : {}),
      affects: [
        { ref: `pkg:generic/${pkg.Name}@${pkg.Version}`, versions: [{ version: pkg.Version, status: 'affected' }] },
      ],
    })),
  )
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    path,
    JSON.stringify({
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      version: 1,
      metadata: { component: { type: 'container', name: `registry.example.com/bench@${BENCH_DIGEST}` } },
      components,
      vulnerabilities,
    }),
  )
  return path
}
