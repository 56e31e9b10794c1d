import {
  DICOM,
  OBJECT_ROLE,
  SESSION_CODE,
  SYSTEM,
  asList,
  asRecord,
  asText,
  displayOf,
  hasCode,
  parseReference,
  textAt,
  type Json,
} from './fhir-values';

/**
 * Which AuditEvent entity is the resource acted on, and which is the patient. The order of the
 * rules is in fhir.ts; the helpers below each apply one of them.
 */
export interface Subject {
  type: string;
  id: string;
  fields?: string[];
}

/** What the synthetic subjects of application and login events fall back on. */
export interface SubjectContext {
  application?: string;
  applicationAgent?: string;
  sessionId?: string;
}

const OBJECT_ROLE_SYSTEM = /object-role$/;
/** BALP records the request id as an entity; it is bookkeeping, not the resource. */
const BOOKKEEPING_TYPES = ['XrequestId'];

export function subjectOf(audit: Json, context: SubjectContext): Subject | undefined {
  const entities = asList(audit.entity).filter((entity) => !isBookkeeping(entity));
  const others = entities.filter((entity) => !isPatientEntity(entity));
  const patients = entities.filter(isPatientEntity);
  return (
    firstOf(others, referencedSubject) ??
    syntheticSubject(audit, context) ??
    firstOf(others, identifiedSubject) ??
    firstOf(others, querySubject) ??
    firstOf(patients, referencedSubject) ??
    firstOf(patients, identifiedSubject)
  );
}

export function patientOf(audit: Json): string | undefined {
  const entities = asList(audit.entity);
  const byRole = entities.find(isPatientEntity);
  if (byRole) return idOf(byRole);
  const references = entities.map((entity) => parseReference(whatOf(entity).reference));
  return references.find((reference) => reference?.type === 'Patient')?.id;
}

export function sessionOf(audit: Json): string | undefined {
  const session = asList(audit.entity).find((entity) => {
    const type = asRecord(entity.type);
    return type?.system === SYSTEM.vigilEntityType && type.code === SESSION_CODE;
  });
  return session && textAt(session, 'what', 'identifier', 'value');
}

function isPatientEntity(entity: Json): boolean {
  return hasCode(entity.role, OBJECT_ROLE.patient, OBJECT_ROLE_SYSTEM);
}

function isBookkeeping(entity: Json): boolean {
  const type = asRecord(entity.type);
  if (type?.system === SYSTEM.vigilEntityType) return true;
  return BOOKKEEPING_TYPES.some((code) => type?.code === code);
}

function referencedSubject(entity: Json): Subject | undefined {
  const reference = parseReference(whatOf(entity).reference);
  return reference && { ...reference, fields: detailTypes(entity) };
}

function identifiedSubject(entity: Json): Subject | undefined {
  const id = idOf(entity);
  return id === undefined ? undefined : { type: labelOf(entity), id, fields: detailTypes(entity) };
}

/** Application start and stop act on the application; login and logout on a session. */
function syntheticSubject(audit: Json, context: SubjectContext): Subject | undefined {
  const codes = [asRecord(audit.type), ...asList(audit.subtype)].map((coding) => coding?.code);
  if (codes.includes(DICOM.applicationActivity)) {
    const id = context.applicationAgent ?? context.application;
    return id ? { type: 'Application', id } : undefined;
  }
  if (codes.includes(DICOM.userAuthentication)) {
    const id = context.sessionId ?? context.application;
    return id ? { type: 'Session', id } : undefined;
  }
  return undefined;
}

/**
 * A search names no single resource: the resource type searched and the search itself (relative
 * to the server base, e.g. `Encounter?participant=13`) stand in for it.
 */
function querySubject(entity: Json): Subject | undefined {
  const query = asText(entity.query);
  if (!query) return undefined;
  const decoded = Buffer.from(query, 'base64').toString('utf8');
  const search = searchIn(decoded.split('\n')[0] ?? '');
  return search ?? { type: 'Query', id: query };
}

const ABSOLUTE_SEARCH = /\/([A-Z][A-Za-z]{0,63})(\?\S*)?(?:\s|$)/;
const RELATIVE_SEARCH = /^([A-Z][A-Za-z]{0,63})(\?\S*)/;

function searchIn(line: string): Subject | undefined {
  const match = ABSOLUTE_SEARCH.exec(line) ?? RELATIVE_SEARCH.exec(line);
  if (!match?.[1]) return undefined;
  return { type: match[1], id: `${match[1]}${match[2] ?? ''}` };
}

function whatOf(entity: Json): Json {
  return asRecord(entity.what) ?? {};
}

/** The id of a reference, else the identifier, else the reference as written (e.g. `#o1`). */
function idOf(entity: Json): string | undefined {
  const what = whatOf(entity);
  return (
    parseReference(what.reference)?.id ??
    textAt(what, 'identifier', 'value') ??
    asText(what.reference)
  );
}

/** The best name for what an identifier-only entity is. */
function labelOf(entity: Json): string {
  if (isPatientEntity(entity)) return 'Patient';
  const type = asRecord(entity.type);
  const fhirType = type?.system === SYSTEM.resourceTypes ? asText(type.code) : undefined;
  const vigilType = type?.system === SYSTEM.vigilResourceType ? asText(type.display) : undefined;
  const identifierType = asRecord(whatOf(entity).identifier)?.type;
  return (
    fhirType ??
    vigilType ??
    displayOf(identifierType) ??
    asText(asRecord(entity.role)?.display) ??
    asText(type?.display) ??
    'Object'
  );
}

function detailTypes(entity: Json): string[] | undefined {
  const types = asList(entity.detail)
    .map((detail) => asText(detail.type))
    .filter((type): type is string => type !== undefined);
  return types.length > 0 ? types : undefined;
}

function firstOf<T>(items: Json[], pick: (item: Json) => T | undefined): T | undefined {
  for (const item of items) {
    const picked = pick(item);
    if (picked !== undefined) return picked;
  }
  return undefined;
}
