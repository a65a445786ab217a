import { describe, expect, it } from 'vitest';
import { formatTable } from './ctl-table.js';

describe('formatTable', () => {
  it('pads columns to the widest cell, shows missing values as "-", leaves the last column unpadded', () => {
    const t = formatTable(['ID', 'STATUS', 'REASON'], [['web-1', 'synced', null], ['w2', 'refused', 'unknown field']]);
    expect(t.split('\n')).toEqual(['ID     STATUS   REASON', 'web-1  synced   -', 'w2     refused  unknown field']);
  });
});
