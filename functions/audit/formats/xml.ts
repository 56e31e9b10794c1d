import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { atnaToR4Shape, elements, type XmlElement } from './atna';
import { decodeAuditEvent, fromFhir } from './fhir';
import type { Json } from './fhir-values';
import { failure } from './problems';
import type { DecodedEvent, EventFormat } from './types';

/**
 * Audit events in XML: FHIR AuditEvent or Bundle (any version fromFhir reads), and DICOM/IHE ATNA
 * AuditMessage (DICOM PS3.15 A.5, RFC 3881).
 *
 * A DOCTYPE is refused outright rather than parsed with limits: no audit format needs one, and
 * refusing closes external entities (XXE) and entity expansion (billion laughs) alike.
 */
const DECLARATION = /<!DOCTYPE|<!ENTITY/i;
const DOCUMENT = '(document)';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  // Every element as an array, so one child and many read alike; FHIR's cardinality decides later.
  isArray: (_name, _path, _isLeaf, isAttribute) => !isAttribute,
  // Numeric character references (&#233;) are XML, but the parser decodes them only with this on.
  htmlEntities: true,
});

export function fromXml(text: string): DecodedEvent[] {
  const format: EventFormat = /<(?:[\w.-]+:)?AuditMessage[\s/>]/.test(text) ? 'atna' : 'fhir-r4';
  if (DECLARATION.test(text)) {
    return [{ parsed: failure(DOCUMENT, 'must not declare a DOCTYPE or entities'), format }];
  }
  const parsed = parseDocument(text);
  if (typeof parsed === 'string') return [{ parsed: failure(DOCUMENT, parsed), format }];

  const [name, root] = parsed;
  if (name === 'AuditMessage') return [decodeAuditEvent(atnaToR4Shape(root), 'atna')];
  if (name === 'AuditEvent' || name === 'Bundle') return fromFhir(resourceOf(name, root));
  const reason = 'must be a FHIR AuditEvent or Bundle, or a DICOM AuditMessage';
  return [{ parsed: failure(DOCUMENT, reason), format }];
}

/**
 * The root element and its name, or why there is none. The parser's own messages can quote the
 * document, so only their code and line are passed on.
 */
function parseDocument(text: string): [string, XmlElement] | string {
  const valid = XMLValidator.validate(text);
  if (valid !== true) return `is not well-formed XML (${valid.err.code} at line ${valid.err.line})`;
  let document: XmlElement;
  try {
    document = parser.parse(text) as XmlElement;
  } catch {
    return 'is not XML this service reads (reserved element names or nesting too deep)';
  }
  const name = Object.keys(document).find((key) => !key.startsWith('?') && !key.startsWith('#'));
  const root = name === undefined ? undefined : elements(document, name)[0];
  return name !== undefined && root ? [name, root] : 'has no root element';
}

/**
 * FHIR XML to FHIR JSON (R4 "XML Representation"): a primitive's `value` attribute becomes the
 * value, repeated elements become arrays, and so does any element the JSON form always writes as
 * an array even when it occurs once. Narrative and primitive extensions are dropped: the mapping
 * reads neither.
 */
const ALWAYS_ARRAY = new Set([
  'coding',
  'extension',
  'modifierExtension',
  'contained',
  'profile',
  'security',
  'tag',
  'link',
  'entry',
]);

const ARRAY_CHILDREN = new Set([
  'AuditEvent.subtype',
  'AuditEvent.purposeOfEvent',
  'AuditEvent.agent',
  'AuditEvent.entity',
  'agent.role',
  'agent.policy',
  'agent.purposeOfUse',
  'source.type',
  'entity.securityLabel',
  'entity.detail',
  // DSTU2 names
  'AuditEvent.participant',
  'AuditEvent.object',
  'event.subtype',
  'event.purposeOfEvent',
  'participant.role',
  'participant.policy',
  'participant.purposeOfUse',
  'object.securityLabel',
  'object.detail',
]);

const BOOLEAN_ELEMENTS = new Set(['requestor', 'userSelected']);
/** Elements whose single child is a whole resource, named by its element. */
const RESOURCE_HOLDERS = new Set(['contained', 'resource']);

function resourceOf(resourceType: string, element: XmlElement): Json {
  return { resourceType, ...complexOf(resourceType, element) };
}

function complexOf(name: string, element: XmlElement): Json {
  const isResource = /^[A-Z]/.test(name);
  const json: Json = {};
  for (const key of Object.keys(element)) {
    if (key.startsWith('@_')) {
      const attribute = key.slice(2);
      if (attribute !== 'value' && attribute !== 'xmlns') json[attribute] = element[key];
    } else if (key !== '#text' && !(isResource && key === 'text')) {
      const values = elements(element, key).map((child) => valueOf(key, child));
      const asArray = ALWAYS_ARRAY.has(key) || ARRAY_CHILDREN.has(`${name}.${key}`);
      json[key] = asArray || values.length > 1 ? values : values[0];
    }
  }
  return json;
}

function valueOf(name: string, element: XmlElement): unknown {
  if (RESOURCE_HOLDERS.has(name)) return heldResource(element);
  const value = element['@_value'];
  if (value !== undefined) return BOOLEAN_ELEMENTS.has(name) ? value === 'true' : value;
  return complexOf(name, element);
}

function heldResource(holder: XmlElement): Json | undefined {
  const resourceType = Object.keys(holder).find((key) => /^[A-Z]/.test(key));
  const resource = resourceType && elements(holder, resourceType)[0];
  return resourceType && resource ? resourceOf(resourceType, resource) : undefined;
}
