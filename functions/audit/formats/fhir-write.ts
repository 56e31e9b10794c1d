import type { AuditAction, NativeEvent } from '../event';
import {
  DICOM,
  EXTENSION,
  FHIR_ID,
  NETWORK,
  OBJECT_ROLE,
  SESSION_CODE,
  SYSTEM,
  compact,
  type Json,
} from './fhir-values';

/**
 * Native event to FHIR R4 AuditEvent, written so that fromFhir reads every field back unchanged.
 * What R4 cannot carry: userAgent; an id outside the FHIR id syntax; a timestamp without
 * seconds (an instant needs them, so `:00` is added); an empty fieldsAccessed list.
 */
export interface FhirMeta {
  eventKey: string;
  producer?: string;
  source?: string;
  receivedAt?: string;
}

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{0,63}$/;
/** Failures are written as 4 (minor failure): the native event does not say how serious. */
const OUTCOME_CODES = { success: '0', failure: '4' } as const;
/** A detail needs a value; the field name is the type, and this says what happened to it. */
const FIELD_ACCESSED = 'accessed';

type RestAction = Exclude<AuditAction, 'export'>;
const REST_ACTIONS: Record<RestAction, [action: string, interaction: string]> = {
  view: ['R', 'read'],
  create: ['C', 'create'],
  update: ['U', 'update'],
  delete: ['D', 'delete'],
  execute: ['E', 'operation'],
};

export function toFhir(event: NativeEvent, meta: FhirMeta): Record<string, unknown> {
  return compact({
    resourceType: 'AuditEvent',
    id: event.id !== undefined && FHIR_ID.test(event.id) ? event.id : undefined,
    meta: metaOf(meta),
    extension: extensionsOf(meta),
    ...typeOf(event.action),
    recorded: instantOf(event.timestamp),
    outcome: event.outcome && OUTCOME_CODES[event.outcome],
    purposeOfEvent: purposeOfEvent(event),
    agent: agentsOf(event),
    source: { observer: observerOf(event, meta) },
    entity: entitiesOf(event),
  });
}

function metaOf(meta: FhirMeta): Json | undefined {
  const received = meta.receivedAt === undefined ? NaN : Date.parse(meta.receivedAt);
  if (Number.isNaN(received)) return undefined;
  return { lastUpdated: new Date(received).toISOString() };
}

function extensionsOf(meta: FhirMeta): Json[] {
  const values: [string, string | undefined][] = [
    [EXTENSION.eventKey, meta.eventKey],
    [EXTENSION.producer, meta.producer],
    [EXTENSION.source, meta.source],
  ];
  return values
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([url, valueString]) => ({ url, valueString }));
}

/** REST interactions for the CRUD actions; DICOM Export, which carries action R, for exports. */
function typeOf(action: AuditAction): Json {
  if (action === 'export') {
    return { type: { system: SYSTEM.dicom, code: DICOM.export, display: 'Export' }, action: 'R' };
  }
  const [code, interaction] = REST_ACTIONS[action];
  return {
    type: { system: SYSTEM.eventType, code: 'rest', display: 'RESTful Operation' },
    subtype: [{ system: SYSTEM.restful, code: interaction }],
    action: code,
  };
}

function instantOf(timestamp: string): string {
  return timestamp.replace(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(?=Z|[+-])/, '$1:00');
}

/** Purpose codes go in the coding, the free-text reason in the concept's text. */
function purposeOfEvent(event: NativeEvent): Json[] | undefined {
  if (event.purposeOfUse === undefined && event.reason === undefined) return undefined;
  const coding = event.purposeOfUse === undefined ? undefined : purposeCoding(event.purposeOfUse);
  return [compact({ coding: coding && [coding], text: event.reason })];
}

/** `TREAT` is a v3-ActReason code, `system|code` names its system, anything else is words. */
function purposeCoding(purpose: string): Json {
  if (/^[A-Z]+$/.test(purpose)) return { system: SYSTEM.actReason, code: purpose };
  const qualified = /^([^\s|]+)\|([^\s|]+)$/.exec(purpose);
  if (qualified) return { system: qualified[1], code: qualified[2] };
  return { display: purpose };
}

function agentsOf(event: NativeEvent): Json[] {
  const user = compact({
    role: event.userRole === undefined ? undefined : [{ text: event.userRole }],
    who: { identifier: { value: event.userId } },
    requestor: true,
    network: event.ipAddress && { address: event.ipAddress, type: NETWORK.ip },
  });
  if (event.device === undefined) return [user];
  const device = {
    type: { coding: [{ system: SYSTEM.dicom, code: DICOM.sourceRole, display: 'Source Role ID' }] },
    requestor: false,
    network: { address: event.device, type: NETWORK.machineName },
  };
  return [user, device];
}

/** R4 requires an observer; without an application, the producer that relayed the event. */
function observerOf(event: NativeEvent, meta: FhirMeta): Json {
  if (event.application !== undefined) return { display: event.application };
  return { identifier: { system: SYSTEM.vigilProducer, value: meta.producer || 'unknown' } };
}

function entitiesOf(event: NativeEvent): Json[] {
  const entities = [resourceEntity(event)];
  if (event.patientId !== undefined) entities.push(patientEntity(event.patientId));
  if (event.sessionId !== undefined) entities.push(sessionEntity(event.sessionId));
  return entities;
}

/** A reference when type and id fit FHIR's syntax, else an identifier typed by Vigil's system. */
function resourceEntity(event: NativeEvent): Json {
  const { resourceType, resourceId } = event;
  const referable = RESOURCE_TYPE.test(resourceType) && FHIR_ID.test(resourceId);
  const fields = event.fieldsAccessed?.map((type) => ({ type, valueString: FIELD_ACCESSED }));
  return compact({
    what: referable
      ? { reference: `${resourceType}/${resourceId}` }
      : { identifier: { value: resourceId } },
    type: referable
      ? { system: SYSTEM.entityType, code: '2', display: 'System Object' }
      : { system: SYSTEM.vigilResourceType, display: resourceType },
    role: {
      system: SYSTEM.objectRole,
      code: OBJECT_ROLE.domainResource,
      display: 'Domain Resource',
    },
    detail: fields && fields.length > 0 ? fields : undefined,
  });
}

function patientEntity(patientId: string): Json {
  return {
    what: FHIR_ID.test(patientId)
      ? { reference: `Patient/${patientId}` }
      : { identifier: { value: patientId } },
    type: { system: SYSTEM.entityType, code: '1', display: 'Person' },
    role: { system: SYSTEM.objectRole, code: OBJECT_ROLE.patient, display: 'Patient' },
  };
}

function sessionEntity(sessionId: string): Json {
  return {
    what: { identifier: { value: sessionId } },
    type: { system: SYSTEM.vigilEntityType, code: SESSION_CODE, display: 'Session' },
  };
}
