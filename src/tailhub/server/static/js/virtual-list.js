/**
 * A scrolling list that keeps only the rows in and near view in the DOM.
 *
 * Every row is a whole number of text lines of one fixed height, so a row's position is a
 * prefix sum of line counts: no row is measured, and a list of 100,000 rows costs one array of
 * offsets and a few dozen elements. Rows are absolutely placed in a sizer as tall as the whole
 * list, so the native scrollbar, keyboard scrolling and wheel all work as usual.
 *
 * "Following" keeps the end of the list in view as rows are appended. Scrolling up (wheel,
 * keys, scrollbar) stops following; scrolling down to the end again resumes it (only down:
 * an animated scroll up, as Chromium does for keys, starts within a line of the end, and
 * must not count as reaching it). While not following, a rebuild (new filter, rows merged
 * in above) keeps the first visible row where it was.
 * @module virtual-list
 */

/**
 * @template T
 * @typedef {object} Options
 * @property {number} lineHeight pixels per text line; must match the CSS
 * @property {(item: T) => HTMLElement} renderRow builds a row's element
 * @property {(item: T) => number} heightOf a row's height in lines (at least 1)
 * @property {(a: T, b: T) => number} compare the order of the items, to find an anchor again
 * @property {(following: boolean, unseen: number) => void} [onFollow] following changed, or
 *   rows arrived while not following
 * @property {number} [overscan] rows rendered beyond each edge of the view
 */

const UP_KEYS = new Set(["ArrowUp", "PageUp", "Home"]);

/** @template T */
export class VirtualList {
  /**
   * @param {HTMLElement} viewport the scrolling element (CSS: `overflow: auto`)
   * @param {Options<T>} options
   */
  constructor(viewport, options) {
    this.viewport = viewport;
    this.options = options;
    this.lineHeight = options.lineHeight;
    this.overscan = options.overscan ?? 12;
    this.sizer = document.createElement("div");
    this.sizer.className = "vlist-sizer";
    viewport.appendChild(this.sizer);
    /** @type {T[]} */
    this.items = [];
    /** Line offset of each item; `offsets[items.length]` is the total. */
    this.offsets = [0];
    /** @type {Map<T, HTMLElement>} rows now in the DOM */
    this.rendered = new Map();
    this.following = true;
    this.unseen = 0;
    this.autoTop = -1;
    /** scrollTop as last seen or set here, to tell the user's scrolling down from up */
    this.lastTop = 0;
    this.frame = 0;
    this.onScroll = () => this.scrolled();
    viewport.addEventListener("scroll", this.onScroll, { passive: true });
    viewport.addEventListener("wheel", (e) => e.deltaY < 0 && this.stopFollowing(), {
      passive: true,
    });
    viewport.addEventListener("keydown", (e) => {
      if (UP_KEYS.has(e.key)) this.stopFollowing();
      else if (e.key === "End") this.follow();
    });
    this.resizeObserver = new ResizeObserver(() => this.schedule());
    this.resizeObserver.observe(viewport);
  }

  /** Total height in lines. */
  get totalLines() {
    return this.offsets[this.items.length];
  }

  /**
   * Replaces every item. While following, the view stays at the end; otherwise the first
   * visible item (or the nearest one that is still listed) stays where it was.
   * @param {T[]} items the list takes ownership of the array
   */
  setItems(items) {
    const anchor = this.following ? null : this.anchor();
    this.items = items;
    this.rebuildOffsets(0);
    this.clearRows();
    this.sizer.style.minWidth = "";
    if (anchor) {
      const index = this.lowerBound(anchor.item);
      const top = index < items.length ? this.offsets[index] * this.lineHeight : this.height();
      this.setSize();
      // Assigned only when it moves: any assignment ends a scroll the user has under way.
      const target = top - anchor.delta;
      if (this.viewport.scrollTop !== target) this.viewport.scrollTop = target;
      this.lastTop = this.viewport.scrollTop;
    }
    this.schedule();
  }

  /** @param {T[]} items appended at the end */
  append(items) {
    if (!items.length) return;
    const start = this.items.length;
    for (const item of items) this.items.push(item);
    this.rebuildOffsets(start);
    if (!this.following) {
      this.unseen += items.length;
      this.options.onFollow?.(false, this.unseen);
    }
    this.schedule();
  }

  /** The height of `items[index]` changed. @param {number} index */
  resized(index) {
    this.rebuildOffsets(index);
    const element = this.rendered.get(this.items[index]);
    if (element) {
      element.remove();
      this.rendered.delete(this.items[index]);
    }
    this.schedule();
  }

  /** Renders every visible row afresh (their content depends on something that changed). */
  refresh() {
    this.clearRows();
    this.schedule();
  }

  /** Scrolls to the end and follows new rows. */
  follow() {
    const changed = !this.following;
    this.following = true;
    this.unseen = 0;
    if (changed) this.options.onFollow?.(true, 0);
    this.schedule();
  }

  stopFollowing() {
    if (!this.following || this.height() <= this.viewport.clientHeight) return;
    this.following = false;
    this.unseen = 0;
    this.options.onFollow?.(false, 0);
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.resizeObserver.disconnect();
    this.viewport.removeEventListener("scroll", this.onScroll);
  }

  // -- internals -------------------------------------------------------------------------

  height() {
    return this.totalLines * this.lineHeight;
  }

  /** @param {number} from first index whose offset may have changed */
  rebuildOffsets(from) {
    const { items, offsets, options } = this;
    offsets.length = items.length + 1;
    for (let i = from; i < items.length; i++) {
      offsets[i + 1] = offsets[i] + Math.max(1, options.heightOf(items[i]));
    }
  }

  clearRows() {
    for (const element of this.rendered.values()) element.remove();
    this.rendered.clear();
  }

  setSize() {
    this.sizer.style.height = `${this.height()}px`;
  }

  scrolled() {
    const { viewport } = this;
    const end = viewport.scrollHeight - viewport.clientHeight;
    const top = viewport.scrollTop;
    const down = top > this.lastTop;
    this.lastTop = top;
    if (top >= end - this.lineHeight) {
      if (!this.following && down) this.follow();
    } else if (this.following && top < this.autoTop - 1) {
      this.stopFollowing();
    }
    this.schedule();
  }

  /** The first item in view and how far its top is above the view's top, in pixels. */
  anchor() {
    if (!this.items.length) return null;
    const index = this.indexAtLine(Math.floor(this.viewport.scrollTop / this.lineHeight));
    return {
      item: this.items[index],
      delta: this.viewport.scrollTop - this.offsets[index] * this.lineHeight,
    };
  }

  /** The first index whose item is not before `item` in list order. @param {T} item */
  lowerBound(item) {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.options.compare(this.items[mid], item) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of the item covering text line `line`. @param {number} line */
  indexAtLine(line) {
    const { offsets } = this;
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (offsets[mid] <= line) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  schedule() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }
  }

  render() {
    const { viewport, items, offsets, lineHeight } = this;
    this.setSize();
    if (this.following) {
      const end = Math.max(0, this.height() - viewport.clientHeight);
      if (viewport.scrollTop !== end) viewport.scrollTop = end;
      this.autoTop = this.lastTop = viewport.scrollTop;
    }
    if (!items.length) {
      this.clearRows();
      return;
    }
    const top = viewport.scrollTop;
    const first = Math.max(0, this.indexAtLine(Math.floor(top / lineHeight)) - this.overscan);
    const last = Math.min(
      items.length - 1,
      this.indexAtLine(Math.ceil((top + viewport.clientHeight) / lineHeight)) + this.overscan,
    );
    const keep = new Set();
    for (let i = first; i <= last; i++) keep.add(items[i]);
    for (const [item, element] of this.rendered) {
      if (!keep.has(item)) {
        element.remove();
        this.rendered.delete(item);
      }
    }
    // Place rows in list order, so that reading and selecting text follow the log.
    /** @type {ChildNode | null} */
    let cursor = this.sizer.firstChild;
    for (let i = first; i <= last; i++) {
      const item = items[i];
      let element = this.rendered.get(item);
      if (!element) {
        element = this.options.renderRow(item);
        this.rendered.set(item, element);
      }
      const y = `translateY(${offsets[i] * lineHeight}px)`;
      if (element.style.transform !== y) element.style.transform = y;
      const lines = offsets[i + 1] - offsets[i];
      const h = `${lines * lineHeight}px`;
      if (element.style.height !== h) element.style.height = h;
      if (element === cursor) cursor = cursor.nextSibling;
      else this.sizer.insertBefore(element, cursor);
    }
    this.widen();
  }

  /**
   * Makes the sizer as wide as the widest row rendered so far, so that every row (styled
   * `min-width: 100%`) spans the whole scroll width: scrolled sideways, each row's sticky
   * cells stay in view instead of leaving with a short row.
   */
  widen() {
    let widest = 0;
    for (const element of this.rendered.values()) widest = Math.max(widest, element.scrollWidth);
    const current = Number.parseFloat(this.sizer.style.minWidth) || 0;
    if (widest > current + 1 && widest > this.viewport.clientWidth) {
      this.sizer.style.minWidth = `${widest}px`;
    }
  }
}
