/**
 * Reading reports back: a report file from any version this package knows becomes a current
 * `Report`, and anything else is a `ReportSchemaError` (never a silently empty comparison).
 */
import { readFileSync } from 'node:fs';
import { KvkitError } from '@kvkit/tensor-utils';
import { type Report, schemaVersion } from './schema.ts';

/**
 * The schema versions `upgradeReport` reads.
 *
 * @example
 * readableVersions.includes(json.schemaVersion);
 */
export const readableVersions = [1, schemaVersion] as const;

/**
 * A report of a schema version this package cannot read, or no report at all.
 *
 * @example
 * try { readReport(file); } catch (e) { if (e instanceof ReportSchemaError) console.log(e.actual); }
 */
export class ReportSchemaError extends KvkitError {
  override name = 'ReportSchemaError';
  /** The version found (`undefined` when the field is missing). */
  readonly actual: unknown;
  /** Where the report came from (a file path), when known. */
  readonly source: string | null;
  constructor(message: string, data: { actual: unknown; source?: string | null }) {
    super(message);
    this.actual = data.actual;
    this.source = data.source ?? null;
  }
}

/**
 * Returns `report` as a current-version report: version 2 as it is, version 1 with
 * `noise: null` (it was not measured then). The input is not changed. Throws a
 * `ReportSchemaError` for any other version or for something that is not a report.
 *
 * @example
 * const report = upgradeReport(JSON.parse(readFileSync('reports/history/2026-11-26-kernel.json', 'utf8')));
 */
export function upgradeReport(report: unknown, source: string | null = null): Report {
  const from = source ? `${source}: ` : '';
  if (report === null || typeof report !== 'object') {
    throw new ReportSchemaError(`${from}not a kvbench report (got ${String(report)})`, {
      actual: undefined,
      source,
    });
  }
  const r = report as Partial<Report> & { schemaVersion?: unknown };
  const version = r.schemaVersion;
  if (!readableVersions.includes(version as 1 | 2)) {
    throw new ReportSchemaError(
      `${from}schemaVersion ${String(version)} is not one this kvbench reads ` +
        `(it reads versions ${readableVersions.join(' and ')}); run \`kvbench\` again to write a current report`,
      { actual: version, source },
    );
  }
  if (typeof r.environment !== 'object' || r.environment === null || !Array.isArray(r.scenarios)) {
    throw new ReportSchemaError(`${from}not a kvbench report (no environment or scenarios)`, {
      actual: version,
      source,
    });
  }
  if (version === schemaVersion) return r as Report;
  return {
    ...(r as Omit<Report, 'schemaVersion' | 'noise'>),
    schemaVersion,
    noise: null,
    machine: null,
    scenarios: r.scenarios.map((s) => ({ ...s, noise: null })),
  };
}

/**
 * Reads a report file of any readable version as a current report (see `upgradeReport`).
 *
 * @example
 * const base = readReport('reports/history/2026-11-26-kernel.json'); // version 1, upgraded
 */
export function readReport(file: string): Report {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new ReportSchemaError(`${file}: cannot read a JSON report (${String(cause)})`, {
      actual: undefined,
      source: file,
    });
  }
  return upgradeReport(parsed, file);
}
