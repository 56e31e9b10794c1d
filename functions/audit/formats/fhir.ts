/**
 * FHIR AuditEvent to native event. R4 is the reference shape: STU3 and DSTU2 resources are first
 * rewritten into it (fhir-legacy.ts) and ATNA messages arrive already rewritten (atna.ts). The
 * mapped object then goes through parseNativeEvent, so every format meets the same validation.
 * The rules below take the first match; where a field is missing, a fallback is preferred to a
 * rejection.
 *
 * native          R4 AuditEvent
 * userId          the acting agent (requestor=true, else a humanuser, else the first with an
 *                 identity): who.identifier.value, who.reference, who.display, altId, name
 * userRole        acting agent's role, then its type, in words: text, display, else code
 * ipAddress       network.address of type 2 (IP): the acting agent's, else another agent's
 * device          network.address of type 1 (machine name): the acting agent's, else another's
 * action          C/U/D create/update/delete; R view, E execute, both export when type or
 *                 subtype is DICOM 110106 Export or a 'disclosure' code (DICOM Export carries R)
 * resourceType,   1. an entity whose what.reference names Type/id (absolute, versioned too)
 * resourceId      2. application activity (DICOM 110100): Application + the application
 *                    agent (DICOM 110150) or the observer; user authentication (110114):
 *                    Session + the session or the observer
 *                 3. an entity's identifier, typed by its resource-types code, identifier
 *                    type, role or type display
 *                 4. a query entity: the type searched and the search, Encounter?subject=1
 *                 patient entities (role 1) are tried last, by reference then identifier
 * patientId       entity with role 1 (Patient), else an entity referencing Patient/id
 * fieldsAccessed  detail[].type of the entity chosen as the resource
 * timestamp       recorded as sent (a FHIR instant always carries its zone)
 * sessionId       what.identifier.value of an entity typed urn:vigil:fhir:entity-type#session
 * purposeOfUse    first coding of purposeOfEvent, else of the acting agent's purposeOfUse:
 *                 the bare code for v3-ActReason (or no system), else system|code; display
 *                 when there is no code
 * reason          purposeOfEvent[].text, else outcomeDesc
 * application     source.observer display, its identifier.value, source.site, observer
 *                 reference
 * outcome         '0' success, any other code failure
 * id              id
 * userAgent       no R4 element carries it
 */
import { parseNativeEvent, type AuditAction, type NativeEvent } from '../event';
import { patientOf, sessionOf, subjectOf } from './fhir-entities';
import { toR4Shape, versionOf } from './fhir-legacy';
import {
  DICOM,
  NETWORK,
  SYSTEM,
  asList,
  asRecord,
  asText,
  codingsOf,
  compact,
  displayOf,
  textAt,
  type Json,
} from './fhir-values';
import { failure, renamed, sourceField, type SourceFormat } from './problems';
import type { DecodedEvent } from './types';

export { toFhir, type FhirMeta } from './fhir-write';

const ACTION_CODES = new Map<unknown, AuditAction>([
  ['C', 'create'],
  ['R', 'view'],
  ['U', 'update'],
  ['D', 'delete'],
  ['E', 'execute'],
]);
const EXPORT_CODES = [DICOM.export, 'disclosure', 'export'];
const PURPOSE_SYSTEMS = /v3[-/](ActReason|PurposeOfUse)$/;

export function isFhirResource(value: unknown): boolean {
  const type = asRecord(value)?.resourceType;
  return type === 'AuditEvent' || type === 'Bundle';
}

/** One decoded event per AuditEvent: one for a resource, one per entry for a Bundle. */
export function fromFhir(value: unknown): DecodedEvent[] {
  const resource = asRecord(value);
  if (resource?.resourceType === 'Bundle') return fromBundle(resource);
  if (resource?.resourceType === 'AuditEvent') return [fromAuditEvent(resource)];
  return [{ parsed: failure('resourceType', 'must be AuditEvent or Bundle'), format: 'fhir-r4' }];
}

function fromBundle(bundle: Json): DecodedEvent[] {
  const entries: unknown[] = Array.isArray(bundle.entry) ? bundle.entry : [];
  if (entries.length === 0) {
    return [{ parsed: failure('entry', 'holds no AuditEvent'), format: 'fhir-r4' }];
  }
  return entries.map((entry, index) => ({ ...fromEntry(entry, index), entry: index }));
}

function fromEntry(entry: unknown, index: number): DecodedEvent {
  const path = `entry[${index}].resource`;
  const resource = asRecord(asRecord(entry)?.resource);
  if (resource?.resourceType !== 'AuditEvent') {
    return { parsed: failure(`${path}.resourceType`, 'must be AuditEvent'), format: 'fhir-r4' };
  }
  const decoded = fromAuditEvent(resource);
  if (decoded.parsed.ok) return decoded;
  const { field, reason } = decoded.parsed.problem;
  return { ...decoded, parsed: failure(`${path}.${field}`, reason) };
}

function fromAuditEvent(resource: Json): DecodedEvent {
  const version = versionOf(resource);
  return decodeAuditEvent(toR4Shape(resource, version), version);
}

/** Maps an AuditEvent already in the R4 shape; `format` decides how problems name fields. */
export function decodeAuditEvent(audit: Json, format: SourceFormat): DecodedEvent {
  if (audit.action !== undefined && !ACTION_CODES.has(audit.action)) {
    return { parsed: failure(sourceField(format, 'action'), 'must be C, R, U, D or E'), format };
  }
  const parsed = parseNativeEvent(mapAuditEvent(audit));
  if (parsed.ok) return { parsed, format };
  return { parsed: { ok: false, problem: renamed(parsed.problem, format) }, format };
}

function mapAuditEvent(audit: Json): Json {
  const agents = asList(audit.agent);
  const actor = actingAgent(agents);
  const application = applicationOf(asRecord(audit.source));
  const sessionId = sessionOf(audit);
  const applicationAgent = agents.find((agent) => isTyped(agent, DICOM.application));
  const context = { application, sessionId, applicationAgent: identityOf(applicationAgent) };
  const subject = subjectOf(audit, context);

  return compact({
    id: asText(audit.id),
    userId: identityOf(actor),
    userRole: actor && (displayOf(asList(actor.role)[0]) ?? displayOf(actor.type)),
    action: actionOf(audit),
    resourceType: subject?.type,
    resourceId: subject?.id,
    patientId: patientOf(audit),
    fieldsAccessed: subject?.fields,
    ipAddress: networkAddress(agents, actor, NETWORK.ip),
    timestamp: audit.recorded,
    sessionId,
    purposeOfUse: purposeOf(audit, actor),
    reason: reasonOf(audit),
    application,
    device: networkAddress(agents, actor, NETWORK.machineName),
    outcome: outcomeOf(audit.outcome),
  });
}

/** The agent who did the thing: the requestor, else a human user, else anyone identified. */
function actingAgent(agents: Json[]): Json | undefined {
  const identified = agents.filter((agent) => identityOf(agent) !== undefined);
  return (
    identified.find((agent) => agent.requestor === true) ??
    identified.find((agent) => isTyped(agent, 'humanuser')) ??
    identified[0]
  );
}

function identityOf(agent: Json | undefined): string | undefined {
  if (!agent) return undefined;
  const who = asRecord(agent.who);
  return (
    textAt(who, 'identifier', 'value') ??
    asText(who?.reference) ??
    asText(who?.display) ??
    asText(agent.altId) ??
    asText(agent.name)
  );
}

function isTyped(agent: Json, code: string): boolean {
  const concepts = [agent.type, ...asList(agent.role)];
  return concepts.some((concept) => codingsOf(concept).some((coding) => coding.code === code));
}

function networkAddress(agents: Json[], actor: Json | undefined, type: string) {
  const ordered = actor ? [actor, ...agents.filter((agent) => agent !== actor)] : agents;
  for (const agent of ordered) {
    const network = asRecord(agent.network);
    if (network && String(network.type) === type && asText(network.address)) {
      return asText(network.address);
    }
  }
  return undefined;
}

function actionOf(audit: Json): AuditAction | undefined {
  const action = ACTION_CODES.get(audit.action);
  const exported = (action === 'view' || action === 'execute') && isExport(audit);
  return exported ? 'export' : action;
}

function isExport(audit: Json): boolean {
  const codings = [asRecord(audit.type), ...asList(audit.subtype)];
  return codings.some((coding) => {
    const code = asText(coding?.code)?.toLowerCase();
    return code !== undefined && EXPORT_CODES.includes(code);
  });
}

function purposeOf(audit: Json, actor: Json | undefined): string | undefined {
  const concepts = [...asList(audit.purposeOfEvent), ...asList(actor?.purposeOfUse)];
  for (const coding of concepts.flatMap(codingsOf)) {
    const code = asText(coding.code);
    const system = asText(coding.system);
    if (code) return !system || PURPOSE_SYSTEMS.test(system) ? code : `${system}|${code}`;
    if (asText(coding.display)) return asText(coding.display);
  }
  return undefined;
}

function reasonOf(audit: Json): string | undefined {
  const stated = asList(audit.purposeOfEvent).find((concept) => asText(concept.text));
  return asText(stated?.text) ?? asText(audit.outcomeDesc);
}

function applicationOf(source: Json | undefined): string | undefined {
  const observer = asRecord(source?.observer);
  const identifier = asRecord(observer?.identifier);
  // toFhir names the relaying producer here when the event had no application of its own.
  const relayedBy = identifier?.system === SYSTEM.vigilProducer;
  return (
    asText(observer?.display) ??
    (relayedBy ? undefined : asText(identifier?.value)) ??
    asText(source?.site) ??
    asText(observer?.reference)
  );
}

function outcomeOf(outcome: unknown): NativeEvent['outcome'] {
  const code = asText(outcome);
  if (code === undefined) return undefined;
  return code === '0' ? 'success' : 'failure';
}
