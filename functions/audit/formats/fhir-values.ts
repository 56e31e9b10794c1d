/**
 * Readers for untyped FHIR-shaped JSON. Input comes from producers, so nothing here trusts the
 * shape it is given: a value of the wrong type reads as absent.
 */
export type Json = Record<string, unknown>;

/** Code systems read or written by the FHIR mapping. */
export const SYSTEM = {
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  eventType: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
  restful: 'http://hl7.org/fhir/restful-interaction',
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  actReason: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  resourceTypes: 'http://hl7.org/fhir/resource-types',
  // Vigil's own systems, for what R4 has no code for.
  vigilResourceType: 'urn:vigil:fhir:resource-type',
  vigilEntityType: 'urn:vigil:fhir:entity-type',
  vigilProducer: 'urn:vigil:fhir:producer',
} as const;

/** Extensions toFhir adds so an exported AuditEvent can be traced to its Vigil record. */
export const EXTENSION = {
  eventKey: 'urn:vigil:fhir:event-key',
  producer: 'urn:vigil:fhir:producer',
  source: 'urn:vigil:fhir:source',
} as const;

/** AuditEvent.agent.network.type codes (FHIR R4 network-type). */
export const NETWORK = { machineName: '1', ip: '2' } as const;

/** DICOM PS3.16 audit codes (event IDs and participant roles) the mapping treats specially. */
export const DICOM = {
  applicationActivity: '110100',
  export: '110106',
  userAuthentication: '110114',
  application: '110150',
  sourceRole: '110153',
} as const;

/** object-role codes (FHIR R4, from RFC 3881 ParticipantObjectTypeCodeRole). */
export const OBJECT_ROLE = { patient: '1', domainResource: '4' } as const;

export const SESSION_CODE = 'session';

/** The FHIR `id` datatype: what may follow `Type/` in a reference. */
export const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function asRecord(value: unknown): Json | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return value as Json;
}

export function asList(value: unknown): Json[] {
  if (!Array.isArray(value)) return [];
  return value.map(asRecord).filter((item): item is Json => item !== undefined);
}

/** A non-blank string, else undefined. */
export function asText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** The text at a path of keys through nested objects. */
export function textAt(value: unknown, ...path: string[]): string | undefined {
  let current: unknown = value;
  for (const key of path) current = asRecord(current)?.[key];
  return asText(current);
}

export function codingsOf(concept: unknown): Json[] {
  return asList(asRecord(concept)?.coding);
}

/** A concept's words for people: its text, else the first display, else the first code. */
export function displayOf(concept: unknown): string | undefined {
  const coding = codingsOf(concept)[0];
  return textAt(concept, 'text') ?? asText(coding?.display) ?? asText(coding?.code);
}

/** Whether a Coding carries `code`, in `system` when one is given. */
export function hasCode(coding: unknown, code: string, system?: RegExp): boolean {
  const record = asRecord(coding);
  if (record?.code !== code) return false;
  const codingSystem = asText(record.system);
  return system === undefined || codingSystem === undefined || system.test(codingSystem);
}

/**
 * `Type/id` at the end of a relative or absolute reference, a `_history` suffix allowed.
 * Contained (`#id`), `urn:` and query references name no resource and give undefined.
 */
const REFERENCE = /(?:^|\/)([A-Z][A-Za-z]{0,63})\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

export function parseReference(reference: unknown): { type: string; id: string } | undefined {
  const match = typeof reference === 'string' ? REFERENCE.exec(reference) : null;
  if (!match?.[1] || !match[2]) return undefined;
  return { type: match[1], id: match[2] };
}

/** A copy without the keys whose value is undefined, so output has no empty members. */
export function compact<T extends Json>(record: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(record).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}
