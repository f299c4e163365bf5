//! The one page reader: every scroll of a collection (export's id scan, counting and staging,
//! sync's full and filtered reads) goes through [`pages`], so the order checks and the cut at a
//! range's end are written once.

use super::CollectionSource;
use crate::error::{Error, Result};
use crate::model::{Point, PointId};
use serde_json::Value;

/// How the pages of one read are asked for.
#[derive(Debug, Clone, Copy)]
pub struct ScrollOpts<'a> {
    /// Points per page.
    pub page_size: usize,
    /// Payload and vectors too (`false`: ids only).
    pub with_data: bool,
    /// Only the points matching this Qdrant filter (REST JSON).
    pub filter: Option<&'a Value>,
}

impl ScrollOpts<'_> {
    /// Ids only, `page_size` at a time, no filter.
    pub fn ids(page_size: usize) -> ScrollOpts<'static> {
        ScrollOpts {
            page_size,
            with_data: false,
            filter: None,
        }
    }

    /// Whole points, `page_size` at a time, no filter.
    pub fn points(page_size: usize) -> ScrollOpts<'static> {
        ScrollOpts {
            page_size,
            with_data: true,
            filter: None,
        }
    }
}

/// The pages of `[start, end)` in Qdrant's id order (`None`: from the first id / to the last).
pub fn pages<'a>(
    src: &'a dyn CollectionSource,
    start: Option<PointId>,
    end: Option<PointId>,
    opts: ScrollOpts<'a>,
) -> Pages<'a> {
    Pages {
        src,
        cursor: start,
        end,
        opts,
        done: false,
    }
}

/// Iterator over checked pages; see [`pages`].
pub struct Pages<'a> {
    src: &'a dyn CollectionSource,
    cursor: Option<PointId>,
    end: Option<PointId>,
    opts: ScrollOpts<'a>,
    done: bool,
}

impl Pages<'_> {
    /// Where the next page starts; `None` once the range is read.
    pub fn cursor(&self) -> Option<&PointId> {
        if self.done {
            None
        } else {
            self.cursor.as_ref()
        }
    }
}

impl Iterator for Pages<'_> {
    type Item = Result<Vec<Point>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = crate::interrupt::check() {
            self.done = true;
            return Some(Err(e));
        }
        let o = self.opts;
        let page = checked_page(
            self.src,
            self.cursor.as_ref(),
            o.page_size,
            o.with_data,
            o.filter,
        );
        let (mut pts, mut next) = match page {
            Ok(p) => p,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if let Some(end) = &self.end {
            if let Some(cut) = pts.iter().position(|p| &p.id >= end) {
                pts.truncate(cut);
                next = None;
            }
            if next.as_ref().is_some_and(|n| n >= end) {
                next = None;
            }
        }
        self.done = next.is_none();
        self.cursor = next;
        if pts.is_empty() && self.done {
            return None;
        }
        Some(Ok(pts))
    }
}

/// One page from `offset`, checked for the order Qdrant guarantees: ids strictly ascending,
/// none before `offset`, and a next offset after the page's last id. A server that breaks it
/// (a repeated page, a cursor that does not move) would otherwise be followed forever.
pub fn checked_page(
    src: &dyn CollectionSource,
    offset: Option<&PointId>,
    limit: usize,
    with_data: bool,
    filter: Option<&Value>,
) -> Result<(Vec<Point>, Option<PointId>)> {
    let (pts, next) = match filter {
        None => src.scroll(offset, limit, with_data)?,
        Some(f) => src.scroll_where(offset, limit, with_data, f)?,
    };
    let bad = |message: String| Error::Protocol {
        what: "source",
        call: format!("scroll of {}", src.config().name),
        message: format!(
            "{message}; the server's scroll order is broken, so q2z stops instead of reading points twice or running forever. Export from a snapshot instead (--via-snapshot or --snapshot)"
        ),
    };
    let mut prev = offset;
    for (i, p) in pts.iter().enumerate() {
        if let Some(before) = prev
            && (&p.id < before || (i > 0 && &p.id == before))
        {
            return Err(bad(format!("point {} comes after {before}", p.id)));
        }
        prev = Some(&p.id);
    }
    if let (Some(n), Some(last)) = (&next, pts.last())
        && n <= &last.id
    {
        return Err(bad(format!(
            "the next page offset {n} does not come after the page's last point {}",
            last.id
        )));
    }
    if pts.is_empty() && next.is_some() {
        return Err(bad("an empty page with a next page offset".into()));
    }
    Ok((pts, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CollectionConfig, QueryVector};
    use std::sync::Mutex;

    /// A source answering from a fixed id list, `broken` pages (by call index) replaced.
    struct Fake {
        config: CollectionConfig,
        ids: Vec<u64>,
        /// (call index, page ids, next) answered instead of the real page.
        broken: Vec<(usize, Vec<u64>, Option<u64>)>,
        calls: Mutex<usize>,
        filters: Mutex<Vec<Value>>,
    }

    fn pt(id: u64) -> Point {
        Point {
            id: PointId::Num(id),
            vectors: Default::default(),
            payload: Default::default(),
            shard_key: None,
        }
    }

    impl Fake {
        fn new(ids: Vec<u64>) -> Fake {
            Fake {
                config: CollectionConfig::of_vectors(
                    "fake",
                    Default::default(),
                    Default::default(),
                ),
                ids,
                broken: Vec::new(),
                calls: Mutex::new(0),
                filters: Mutex::new(Vec::new()),
            }
        }
    }

    impl CollectionSource for Fake {
        fn config(&self) -> &CollectionConfig {
            &self.config
        }
        fn count(&self) -> Result<u64> {
            Ok(self.ids.len() as u64)
        }
        fn nearest(
            &self,
            _: &str,
            _: &QueryVector,
            _: usize,
            _: bool,
            _: Option<&Value>,
        ) -> Result<Vec<(PointId, f32)>> {
            Ok(Vec::new())
        }
        fn scroll(
            &self,
            offset: Option<&PointId>,
            limit: usize,
            _: bool,
        ) -> Result<(Vec<Point>, Option<PointId>)> {
            let call = {
                let mut c = self.calls.lock().unwrap();
                *c += 1;
                *c - 1
            };
            if let Some((_, ids, next)) = self.broken.iter().find(|b| b.0 == call) {
                return Ok((ids.iter().map(|i| pt(*i)).collect(), next.map(PointId::Num)));
            }
            let from = match offset {
                Some(PointId::Num(n)) => *n,
                _ => 0,
            };
            let rest: Vec<u64> = self.ids.iter().copied().filter(|i| *i >= from).collect();
            let page: Vec<Point> = rest.iter().take(limit).map(|i| pt(*i)).collect();
            Ok((page, rest.get(limit).map(|i| PointId::Num(*i))))
        }
        fn scroll_where(
            &self,
            offset: Option<&PointId>,
            limit: usize,
            with_data: bool,
            filter: &Value,
        ) -> Result<(Vec<Point>, Option<PointId>)> {
            self.filters.lock().unwrap().push(filter.clone());
            self.scroll(offset, limit, with_data)
        }
    }

    fn read(src: &Fake, start: Option<u64>, end: Option<u64>, o: ScrollOpts) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for p in pages(src, start.map(PointId::Num), end.map(PointId::Num), o) {
            out.extend(p?.into_iter().map(|p| match p.id {
                PointId::Num(n) => n,
                _ => unreachable!(),
            }));
        }
        Ok(out)
    }

    #[test]
    fn a_range_is_read_once_in_order_and_cut_at_its_end() {
        let src = Fake::new((1..=25).collect());
        assert_eq!(
            read(&src, None, None, ScrollOpts::ids(4)).unwrap(),
            (1..=25).collect::<Vec<_>>()
        );
        assert_eq!(
            read(&src, Some(5), Some(12), ScrollOpts::ids(4)).unwrap(),
            (5..12).collect::<Vec<_>>()
        );
        assert_eq!(
            read(&src, Some(30), None, ScrollOpts::ids(4)).unwrap(),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn broken_order_stops_the_read_filtered_or_not() {
        let flt = serde_json::json!({"must": []});
        for filter in [None, Some(&flt)] {
            let o = ScrollOpts {
                page_size: 3,
                with_data: true,
                filter,
            };
            // A cursor that does not move: the same page again.
            let mut src = Fake::new((1..=9).collect());
            src.broken = vec![(1, vec![4, 5, 6], Some(4))];
            let e = read(&src, None, None, o).unwrap_err().to_string();
            assert!(e.contains("does not come after"), "{e}");
            // A page going backwards.
            let mut src = Fake::new((1..=9).collect());
            src.broken = vec![(1, vec![2, 3, 4], Some(7))];
            let e = read(&src, None, None, o).unwrap_err().to_string();
            assert!(e.contains("comes after"), "{e}");
            // An empty page that claims more.
            let mut src = Fake::new((1..=9).collect());
            src.broken = vec![(0, vec![], Some(3))];
            let e = read(&src, None, None, o).unwrap_err().to_string();
            assert!(e.contains("empty page"), "{e}");
            assert_eq!(
                src.filters.lock().unwrap().len(),
                usize::from(filter.is_some())
            );
        }
    }

    #[test]
    fn the_cursor_says_where_the_next_page_starts() {
        let src = Fake::new((1..=10).collect());
        let mut p = pages(&src, None, None, ScrollOpts::ids(4));
        assert_eq!(p.next().unwrap().unwrap().len(), 4);
        assert_eq!(p.cursor(), Some(&PointId::Num(5)));
        p.by_ref().for_each(drop);
        assert_eq!(p.cursor(), None);
    }
}
