//! Pagination as GitHub's REST API does it: `per_page` (default 30, at most
//! 100) and 1-based `page` query parameters, and a `Link` header with
//! absolute URLs to the other pages.

use crate::uri;

const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

/// The page a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) per_page: usize,
    /// 1-based.
    pub(crate) number: usize,
}

impl Page {
    /// Reads `per_page` and `page`; missing, zero or unparsable values take
    /// the defaults, `per_page` above 100 is 100.
    pub(crate) fn from_query(pairs: &[(String, String)]) -> Page {
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.parse::<usize>().ok())
                .filter(|value| *value > 0)
        };
        Page {
            per_page: get("per_page").map_or(DEFAULT_PER_PAGE, |n| n.min(MAX_PER_PAGE)),
            number: get("page").unwrap_or(1),
        }
    }

    /// This page's share of `items`; empty past the last page.
    pub(crate) fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.number - 1).saturating_mul(self.per_page);
        let end = start.saturating_add(self.per_page);
        items
            .get(start.min(items.len())..end.min(items.len()))
            .unwrap_or_default()
    }

    /// The `Link` header for this page of `total` items, or `None` when they
    /// all fit on one page. `url` is the request's absolute URL without its
    /// query; `raw_query` its query string, whose other parameters the links
    /// keep.
    pub(crate) fn link(&self, url: &str, raw_query: Option<&str>, total: usize) -> Option<String> {
        let last = total.div_ceil(self.per_page).max(1);
        if last == 1 && self.number == 1 {
            return None;
        }
        let kept: Vec<&str> = raw_query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| {
                let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
                !pair.is_empty() && uri::form_decode(name) != "page"
            })
            .collect();
        let to = |number: usize, rel: &str| {
            let mut query = kept.join("&");
            if !query.is_empty() {
                query.push('&');
            }
            format!("<{url}?{query}page={number}>; rel=\"{rel}\"")
        };
        // GitHub's order: prev, next, last, first.
        let mut links = Vec::new();
        if self.number > 1 {
            links.push(to(self.number - 1, "prev"));
        }
        if self.number < last {
            links.push(to(self.number + 1, "next"));
            links.push(to(last, "last"));
        }
        if self.number > 1 {
            links.push(to(1, "first"));
        }
        Some(links.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Page {
        Page::from_query(&uri::query_pairs(query))
    }

    #[test]
    fn defaults_and_limits() {
        assert_eq!(
            page(""),
            Page {
                per_page: 30,
                number: 1
            }
        );
        assert_eq!(
            page("per_page=500&page=3"),
            Page {
                per_page: 100,
                number: 3
            }
        );
        assert_eq!(
            page("per_page=0&page=0"),
            Page {
                per_page: 30,
                number: 1
            }
        );
        assert_eq!(page("per_page=x").per_page, 30);
    }

    #[test]
    fn slices() {
        let items: Vec<u32> = (0..7).collect();
        assert_eq!(page("per_page=3&page=3").slice(&items), [6]);
        assert!(page("per_page=3&page=4").slice(&items).is_empty());
        assert!(
            page("per_page=3&page=99999999999999999")
                .slice(&items)
                .is_empty()
        );
    }

    #[test]
    fn links() {
        let url = "http://h/x";
        assert_eq!(page("").link(url, None, 30), None);
        assert_eq!(
            page("per_page=2").link(url, Some("per_page=2"), 5),
            Some(
                "<http://h/x?per_page=2&page=2>; rel=\"next\", \
                 <http://h/x?per_page=2&page=3>; rel=\"last\""
                    .into()
            )
        );
        assert_eq!(
            page("page=2&per_page=2").link(url, Some("page=2&per_page=2&a=%5B"), 5),
            Some(
                "<http://h/x?per_page=2&a=%5B&page=1>; rel=\"prev\", \
                 <http://h/x?per_page=2&a=%5B&page=3>; rel=\"next\", \
                 <http://h/x?per_page=2&a=%5B&page=3>; rel=\"last\", \
                 <http://h/x?per_page=2&a=%5B&page=1>; rel=\"first\""
                    .into()
            )
        );
        assert_eq!(
            page("page=2").link(url, Some("page=2"), 0),
            Some("<http://h/x?page=1>; rel=\"prev\", <http://h/x?page=1>; rel=\"first\"".into())
        );
    }
}
