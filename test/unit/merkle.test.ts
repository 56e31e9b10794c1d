import crypto from 'node:crypto';
import { GENESIS_HASH, LINKS_PER_LEAF, MerkleFrontier } from '../../functions/audit/chain/hashes';

const sha = (s: string) => crypto.hash('sha256', s, 'hex');
const link = (i: number) => sha(`link-${i}`);

/** The same tree built the slow way, straight from its definition. */
function referenceRoot(links: string[]): string {
  if (links.length === 0) return GENESIS_HASH;
  const leaves: string[] = [];
  for (let i = 0; i < links.length; i += LINKS_PER_LEAF) {
    leaves.push(sha(`leaf\n${links.slice(i, i + LINKS_PER_LEAF).join('')}`));
  }
  const tree = (nodes: string[]): string => {
    if (nodes.length === 1) return nodes[0] as string;
    let split = 1;
    while (split * 2 < nodes.length) split *= 2;
    return sha(`node\n${tree(nodes.slice(0, split))}${tree(nodes.slice(split))}`);
  };
  return tree(leaves);
}

describe('the Merkle frontier', () => {
  it('matches the tree built from its definition at every size up to 300 links', () => {
    const frontier = MerkleFrontier.empty();
    const links: string[] = [];
    for (let i = 0; i < 300; i += 1) {
      expect(frontier.root()).toBe(referenceRoot(links));
      links.push(link(i));
      frontier.append(link(i));
    }
  });

  it('restores from a snapshot and carries on identically', () => {
    const whole = MerkleFrontier.empty();
    for (let i = 0; i < 77; i += 1) whole.append(link(i));
    const resumed = MerkleFrontier.restore(whole.snapshot(), 77);
    for (let i = 77; i < 130; i += 1) {
      whole.append(link(i));
      resumed.append(link(i));
    }
    expect(resumed.root()).toBe(whole.root());
    expect(resumed.size).toBe(130);
  });

  it('changes its root when any link changes', () => {
    const build = (changed?: number) => {
      const f = MerkleFrontier.empty();
      for (let i = 0; i < 40; i += 1) f.append(i === changed ? sha('forged') : link(i));
      return f.root();
    };
    expect(new Set([build(), build(0), build(17), build(39)]).size).toBe(4);
  });
});
