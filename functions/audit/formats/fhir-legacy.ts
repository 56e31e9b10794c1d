import { asList, asRecord, compact, type Json } from './fhir-values';

/**
 * STU3 (3.0) and DSTU2 (1.0) AuditEvents rewritten into the R4 shape, so that a single set of
 * mapping rules serves all three versions. Only the elements the mapping reads are moved.
 *
 *   STU3                       DSTU2                          R4
 *   agent.userId               participant.userId             agent.who.identifier
 *   agent.reference            participant.reference          agent.who
 *   source.identifier          source.identifier              source.observer.identifier
 *   entity.reference           object.reference               entity.what
 *   entity.identifier          object.identifier              entity.what.identifier
 *   recorded, action, ...      event.dateTime, event.action   recorded, action, ...
 *   purposeOfUse (concepts)    purposeOfUse (Codings)         purposeOfUse (concepts)
 */
export type FhirVersion = 'fhir-r4' | 'fhir-stu3' | 'fhir-dstu2';

export function versionOf(resource: Json): FhirVersion {
  const dstu2 = 'event' in resource || 'participant' in resource || 'object' in resource;
  if (dstu2) return 'fhir-dstu2';

  const stu3Agent = asList(resource.agent).some(
    (agent) => 'userId' in agent || 'reference' in agent,
  );
  const stu3Entity = asList(resource.entity).some(
    (entity) => 'reference' in entity || 'identifier' in entity,
  );
  const stu3Source = asRecord(resource.source)?.identifier !== undefined;
  return stu3Agent || stu3Entity || stu3Source ? 'fhir-stu3' : 'fhir-r4';
}

export function toR4Shape(resource: Json, version: FhirVersion): Json {
  if (version === 'fhir-r4') return resource;
  if (version === 'fhir-stu3') {
    return {
      ...resource,
      agent: asList(resource.agent).map(upgradeAgent),
      source: upgradeSource(resource.source),
      entity: asList(resource.entity).map(upgradeEntity),
    };
  }
  return fromDstu2(resource);
}

function fromDstu2(resource: Json): Json {
  const event = asRecord(resource.event) ?? {};
  const participants = asList(resource.participant).map((participant) => ({
    ...participant,
    purposeOfUse: asList(participant.purposeOfUse).map(concept),
  }));
  return compact({
    resourceType: resource.resourceType,
    id: resource.id,
    type: event.type,
    subtype: event.subtype,
    action: event.action,
    recorded: event.dateTime,
    outcome: event.outcome,
    outcomeDesc: event.outcomeDesc,
    purposeOfEvent: asList(event.purposeOfEvent).map(concept),
    agent: participants.map(upgradeAgent),
    source: upgradeSource(resource.source),
    entity: asList(resource.object).map(upgradeEntity),
  });
}

/** DSTU2 codes purposes as bare Codings where later versions use CodeableConcepts. */
function concept(coding: Json): Json {
  return { coding: [coding] };
}

function upgradeAgent(agent: Json): Json {
  const { userId, reference, ...rest } = agent;
  if (rest.who !== undefined || (userId === undefined && reference === undefined)) return rest;
  return { ...rest, who: compact({ ...asRecord(reference), identifier: userId }) };
}

function upgradeSource(source: unknown): Json | undefined {
  const record = asRecord(source);
  if (!record) return undefined;
  const { identifier, ...rest } = record;
  if (rest.observer !== undefined || identifier === undefined) return rest;
  return { ...rest, observer: { identifier } };
}

function upgradeEntity(entity: Json): Json {
  const { reference, identifier, ...rest } = entity;
  if (rest.what !== undefined || (reference === undefined && identifier === undefined)) return rest;
  return { ...rest, what: compact({ ...asRecord(reference), identifier }) };
}
