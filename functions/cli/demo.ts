import fs from 'node:fs';
import path from 'node:path';
import { auditLog } from '../audit/context';
import type { NativeEvent } from '../audit/event';
import { identity } from '../identity/context';
import type { PersonRole } from '../identity/model';
import { runtime } from '../platform/runtime';
import { Progress } from './progress';

/**
 * A synthetic hospital for trying Vigil out: staff in every clinical role, patients, care
 * teams and a few days of access events, a handful of them suspicious. Everything is marked:
 * accounts live under demo.vigil.invalid, names start with "Demo", events come from the
 * "DEMO EHR" application in the `demo-ehr` stream. It is never loaded unless asked for.
 */
export const DEMO_DOMAIN = 'demo.vigil.invalid';
const STAFF: Array<[string, PersonRole]> = [
  ['Demo Ada Okafor', 'physician'],
  ['Demo Ben Ruiz', 'physician'],
  ['Demo Cara Lind', 'nurse'],
  ['Demo Dev Patel', 'nurse'],
  ['Demo Eli Novak', 'nurse'],
  ['Demo Fay Chen', 'pharmacist'],
  ['Demo Gus Moreau', 'lab_technician'],
  ['Demo Hana Sato', 'billing'],
  ['Demo Ivo Kim', 'front_desk'],
  ['Demo Jo Mensah', 'privacy_officer'],
  ['Demo Kit Alvarez', 'compliance'],
];
const PATIENTS = 40;
const ACTIONS: Array<[NativeEvent['action'], string, string[]]> = [
  ['view', 'Observation', ['valueQuantity', 'effectiveDateTime']],
  ['view', 'MedicationRequest', ['medicationCodeableConcept', 'dosageInstruction']],
  ['update', 'Encounter', ['status']],
  ['view', 'Patient', ['name', 'birthDate']],
  ['create', 'Observation', ['valueQuantity']],
];

export async function loadDemo(days: number): Promise<void> {
  const rt = runtime();
  const { users } = identity();
  const links: string[] = [];
  const staff: Array<{ id: string; role: PersonRole }> = [];
  for (const [index, [name, role]] of STAFF.entries()) {
    const email = `${name
      .toLowerCase()
      .replace(/^demo /, '')
      .replace(/\s+/g, '.')}@${DEMO_DOMAIN}`;
    const existing = await users.byEmail(email);
    if (existing) {
      staff.push({ id: existing.id, role });
      continue;
    }
    const { user, enrolmentToken } = await users.create({
      email,
      name,
      employeeId: `DEMO-${100 + index}`,
      roles: [role],
    });
    staff.push({ id: user.id, role });
    links.push(`${email}\t${identity().publicUrl}/enrol#token=${enrolmentToken}`);
  }

  // Care teams: each patient has one physician and two nurses; the rest have no relationship.
  const careTeams = Array.from({ length: PATIENTS }, (_, p) => ({
    patientId: `demo-p-${String(p + 1).padStart(3, '0')}`,
    team: [staff[p % 2], staff[2 + (p % 3)], staff[2 + ((p + 1) % 3)]].map((s) => s?.id as string),
  }));
  const dir = path.join(rt.config.dataDir, 'demo');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'care-teams.json'), JSON.stringify(careTeams, null, 2), {
    mode: 0o600,
  });
  if (links.length > 0)
    fs.writeFileSync(path.join(dir, 'enrolment-links.txt'), `${links.join('\n')}\n`, {
      mode: 0o600,
    });

  const events = demoEvents(careTeams, staff, days, rt.clock.now());
  const progress = new Progress('demo events', events.length);
  for (let i = 0; i < events.length; i += 500) {
    const batch = events.slice(i, i + 500);
    await auditLog().ingest(
      { source: 'cli', stream: 'demo-ehr', producer: 'demo' },
      batch.map((value, ref) => ({
        ref,
        decoded: { format: 'native' as const, parsed: { ok: true as const, value } },
      })),
    );
    progress.advance(batch.length);
  }
  progress.finish();
  process.stdout.write(
    `demo hospital loaded: ${staff.length} staff, ${PATIENTS} patients, ${events.length} access events\n` +
      `enrolment links for the demo staff: ${path.join(dir, 'enrolment-links.txt')} (mode 0600)\n`,
  );
}

/** A deterministic pseudo-random sequence, so the demo looks the same on every machine. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function demoEvents(
  careTeams: Array<{ patientId: string; team: string[] }>,
  staff: Array<{ id: string; role: PersonRole }>,
  days: number,
  now: Date,
): NativeEvent[] {
  const next = random(42);
  const events: NativeEvent[] = [];
  const start = now.getTime() - days * 86_400_000;
  for (let i = 0; i < days * 120; i += 1) {
    const care = careTeams[Math.floor(next() * careTeams.length)] as {
      patientId: string;
      team: string[];
    };
    const userId = care.team[Math.floor(next() * care.team.length)] as string;
    const [action, resourceType, fields] = ACTIONS[
      Math.floor(next() * ACTIONS.length)
    ] as (typeof ACTIONS)[number];
    // Working hours in New York, 07:00-19:00.
    const day = Math.floor(next() * days);
    const at = new Date(start + day * 86_400_000);
    at.setUTCHours(12 + Math.floor(next() * 12), Math.floor(next() * 60), 0, 0);
    events.push(
      demoEvent(i, userId, staff, care.patientId, action, resourceType, fields, at, 'TREAT'),
    );
  }
  // A few that an anomaly review should find: snooping, a bulk export, a night-time look-up.
  const clerk = staff.find((s) => s.role === 'front_desk')?.id as string;
  const biller = staff.find((s) => s.role === 'billing')?.id as string;
  const night = new Date(now.getTime() - 86_400_000);
  night.setUTCHours(7, 12, 0, 0);
  events.push(
    demoEvent(
      9001,
      clerk,
      staff,
      'demo-p-007',
      'view',
      'Patient',
      ['name', 'address', 'ssn'],
      night,
      undefined,
    ),
  );
  for (let p = 0; p < 25; p += 1) {
    const at = new Date(now.getTime() - 2 * 3_600_000 + p * 1000);
    events.push(
      demoEvent(
        9100 + p,
        biller,
        staff,
        careTeams[p]?.patientId as string,
        'export',
        'Claim',
        ['diagnosis', 'procedure'],
        at,
        'HPAYMT',
      ),
    );
  }
  return events;
}

function demoEvent(
  i: number,
  userId: string,
  staff: Array<{ id: string; role: PersonRole }>,
  patientId: string,
  action: NativeEvent['action'],
  resourceType: string,
  fields: string[],
  at: Date,
  purposeOfUse: string | undefined,
): NativeEvent {
  return {
    id: `demo-${i}`,
    userId,
    userRole: staff.find((s) => s.id === userId)?.role,
    action,
    resourceType,
    resourceId: `demo-${resourceType.toLowerCase()}-${i}`,
    patientId,
    fieldsAccessed: fields,
    ipAddress: `10.20.${i % 8}.${10 + (i % 200)}`,
    userAgent: 'DEMO EHR/1.0',
    timestamp: at.toISOString(),
    sessionId: `demo-s-${Math.floor(i / 10)}`,
    purposeOfUse,
    application: 'DEMO EHR',
    device: `demo-ws-${i % 12}`,
    outcome: 'success',
  };
}
