import { SYSTEM, asText, compact, type Json } from './fhir-values';

/**
 * DICOM PS3.15 A.5 / RFC 3881 AuditMessage rewritten into the FHIR R4 AuditEvent shape, following
 * the correspondence the two standards share, so fhir.ts maps both with one set of rules:
 *
 *   EventIdentification @EventActionCode, @EventDateTime   action, recorded
 *   @EventOutcomeIndicator 0/4/8/12, EventOutcomeDescription  outcome, outcomeDesc
 *   EventID, EventTypeCode, PurposeOfUse            type, subtype, purposeOfEvent
 *   ActiveParticipant @UserID, @AlternativeUserID,   agent.who.identifier, altId,
 *     @UserName, @UserIsRequestor, RoleIDCode        name, requestor, role
 *     @NetworkAccessPointID / TypeCode               agent.network address / type
 *   AuditSourceIdentification @AuditSourceID,       source.observer.identifier,
 *     @AuditEnterpriseSiteID, AuditSourceTypeCode    site, type
 *   ParticipantObjectIdentification @ParticipantObjectID, IDTypeCode,
 *     @TypeCode, @TypeCodeRole (1 = patient),       entity.what.identifier (and its type),
 *     ParticipantObjectName / Query / Detail         type, role, name, query, detail
 *
 * Codes come as DICOM's csd-code/originalText or RFC 3881's code/displayName.
 */

/** An element as fast-xml-parser gives it: `@_` attributes, child elements always in arrays. */
export type XmlElement = Record<string, unknown>;

/** ActReason's OID, as ATNA producers write it in codeSystemName. */
const ACT_REASON_OID = '2.16.840.1.113883.5.8';

export function atnaToR4Shape(message: XmlElement): Json {
  const event = elements(message, 'EventIdentification')[0] ?? {};
  const source = elements(message, 'AuditSourceIdentification')[0];
  return compact({
    resourceType: 'AuditEvent',
    type: codingOf(elements(event, 'EventID')[0]),
    subtype: elements(event, 'EventTypeCode').map(codingOf),
    action: attribute(event, 'EventActionCode'),
    recorded: attribute(event, 'EventDateTime'),
    outcome: attribute(event, 'EventOutcomeIndicator'),
    outcomeDesc: textOf(elements(event, 'EventOutcomeDescription')[0]),
    purposeOfEvent: elements(event, 'PurposeOfUse').map(conceptOf),
    agent: elements(message, 'ActiveParticipant').map(agentOf),
    source: source && sourceOf(source),
    entity: elements(message, 'ParticipantObjectIdentification').map(entityOf),
  });
}

function agentOf(participant: XmlElement): Json {
  const userId = attribute(participant, 'UserID');
  const address = attribute(participant, 'NetworkAccessPointID');
  const requestor = attribute(participant, 'UserIsRequestor');
  return compact({
    who: userId && { identifier: { value: userId } },
    altId: attribute(participant, 'AlternativeUserID'),
    name: attribute(participant, 'UserName'),
    requestor: requestor === 'true' || requestor === '1',
    network: address && {
      address,
      type: attribute(participant, 'NetworkAccessPointTypeCode'),
    },
    role: elements(participant, 'RoleIDCode').map(conceptOf),
  });
}

function sourceOf(source: XmlElement): Json {
  const id = attribute(source, 'AuditSourceID');
  return compact({
    observer: id && { identifier: { value: id } },
    site: attribute(source, 'AuditEnterpriseSiteID'),
    type: elements(source, 'AuditSourceTypeCode').map(codingOf),
  });
}

function entityOf(object: XmlElement): Json {
  const idType = elements(object, 'ParticipantObjectIDTypeCode')[0];
  const typeCode = attribute(object, 'ParticipantObjectTypeCode');
  const roleCode = attribute(object, 'ParticipantObjectTypeCodeRole');
  const identifier = compact({
    value: attribute(object, 'ParticipantObjectID'),
    type: idType && conceptOf(idType),
  });
  return compact({
    what: { identifier },
    type: typeCode && { system: SYSTEM.entityType, code: typeCode },
    role: roleCode && { system: SYSTEM.objectRole, code: roleCode },
    name: textOf(elements(object, 'ParticipantObjectName')[0]),
    query: textOf(elements(object, 'ParticipantObjectQuery')[0]),
    detail: elements(object, 'ParticipantObjectDetail').map((detail) =>
      compact({ type: attribute(detail, 'type'), valueBase64Binary: attribute(detail, 'value') }),
    ),
  });
}

function codingOf(code: XmlElement | undefined): Json | undefined {
  if (!code) return undefined;
  return compact({
    system: systemOf(attribute(code, 'codeSystemName')),
    code: attribute(code, 'csd-code') ?? attribute(code, 'code'),
    display: attribute(code, 'originalText') ?? attribute(code, 'displayName'),
  });
}

function conceptOf(code: XmlElement): Json {
  return { coding: [codingOf(code)] };
}

function systemOf(name: string | undefined): string | undefined {
  if (name === 'DCM') return SYSTEM.dicom;
  if (name === ACT_REASON_OID) return SYSTEM.actReason;
  return name;
}

/** Child elements by name; a text-only child arrives as a bare string. */
export function elements(parent: XmlElement, name: string): XmlElement[] {
  const children = parent[name];
  if (!Array.isArray(children)) return [];
  return children.map((child) =>
    typeof child === 'object' && child !== null ? (child as XmlElement) : { '#text': child },
  );
}

export function attribute(element: XmlElement, name: string): string | undefined {
  return asText(element[`@_${name}`]);
}

function textOf(element: XmlElement | undefined): string | undefined {
  return asText(element?.['#text']);
}
