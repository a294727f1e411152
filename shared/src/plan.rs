//! Plans: what an LA shares about a child, and the rule for how long the NHS side may see it.

use crate::identifiers::{CaseRef, DisplayName, FieldError, OdsCode, PhoneNumber};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Duration};

/// Dates on the wire: `2026-01-31`.
pub const ISO_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Serde for dates as `YYYY-MM-DD` (through `String`, so it also works inside internally
/// tagged enums, where time's own helpers cannot read a `null`).
pub mod iso_date {
    use super::ISO_DATE;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&date.format(ISO_DATE).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        Date::parse(&text, ISO_DATE).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::ISO_DATE;
        use serde::{Deserialize, Deserializer, Serializer};
        use time::Date;

        pub fn serialize<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
            match date {
                Some(date) => super::serialize(date, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| Date::parse(&text, ISO_DATE).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// The kind of plan, carried on the wire as its SNOMED CT code (value set
/// England-ChildProtectionPlan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlanType {
    ChildProtectionPlan,
    LookedAfterChild,
    /// Held against the pregnant mother's NHS number; nothing about the unborn child is kept.
    UnbornChildProtectionPlan,
}

impl PlanType {
    pub const ALL: [PlanType; 3] = [
        PlanType::ChildProtectionPlan,
        PlanType::LookedAfterChild,
        PlanType::UnbornChildProtectionPlan,
    ];

    pub fn snomed_code(self) -> &'static str {
        match self {
            Self::ChildProtectionPlan => "342191000000101",
            Self::LookedAfterChild => "764841000000100",
            Self::UnbornChildProtectionPlan => "818901000000100",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::ChildProtectionPlan => "Child protection plan",
            Self::LookedAfterChild => "Looked after child",
            Self::UnbornChildProtectionPlan => "Unborn child protection plan",
        }
    }

    pub fn from_snomed_code(code: &str) -> Result<Self, FieldError> {
        Self::ALL.into_iter().find(|t| t.snomed_code() == code.trim()).ok_or_else(|| {
            FieldError(format!(
                "unknown plan type {code:?}: use a SNOMED CT code from England-ChildProtectionPlan \
                 (342191000000101 CPP, 764841000000100 LAC, 818901000000100 UCPP)"
            ))
        })
    }
}

impl Serialize for PlanType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.snomed_code())
    }
}

impl<'de> Deserialize<'de> for PlanType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::from_snomed_code(&code).map_err(serde::de::Error::custom)
    }
}

/// The point of the child protection process at which the LA recorded a case, each a point where
/// statutory guidance expects the NHS number to be recorded. Optional on a submission; kept only
/// for a case still waiting for its NHS number (its worktray shows it), never shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// A section 47 enquiry (Children Act 1989).
    S47Enquiry,
    /// The Initial Child Protection Conference.
    Icpc,
    /// The child became looked after.
    LookedAfter,
}

impl Stage {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text.trim() {
            "s47_enquiry" => Ok(Self::S47Enquiry),
            "icpc" => Ok(Self::Icpc),
            "looked_after" => Ok(Self::LookedAfter),
            other => Err(FieldError(format!(
                "unknown stage {other:?}: use s47_enquiry, icpc or looked_after"
            ))),
        }
    }
}

/// The LA responsible for a plan, and whom a clinician should call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsibleLa {
    pub ods_code: OdsCode,
    pub name: DisplayName,
    pub office_hours_phone: PhoneNumber,
    pub emergency_duty_team_phone: PhoneNumber,
}

/// One plan for one child, as the LA last submitted it. A child's plans are told apart by the
/// responsible LA and the plan type: a new submission for the same pair replaces the old one
/// (an update, an end date, a correction), as each pair has one key ([`crate::keys::plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_type: PlanType,
    pub case_ref: CaseRef,
    #[serde(with = "iso_date")]
    pub start_date: Date,
    #[serde(with = "iso_date::option", default)]
    pub end_date: Option<Date>,
    /// After this date the plan is never shown to the NHS side. Never shown to it either.
    #[serde(with = "iso_date::option", default)]
    pub delete_date: Option<Date>,
    pub responsible_la: ResponsibleLa,
}

impl Plan {
    /// Dates must be in order: an end or delete date before the start is a data error.
    pub fn check_dates(&self) -> Result<(), (&'static str, FieldError)> {
        if let Some(end) = self.end_date
            && end < self.start_date
        {
            return Err((
                "end_date",
                FieldError(format!(
                    "end date {end} is before start date {}",
                    self.start_date
                )),
            ));
        }
        if let Some(delete) = self.delete_date
            && delete < self.start_date
        {
            return Err((
                "delete_date",
                FieldError(format!(
                    "delete date {delete} is before start date {}",
                    self.start_date
                )),
            ));
        }
        Ok(())
    }

    /// Whether the NHS side may see this plan today: from its start, while active and for the
    /// configured period after its end date, and never on or after its delete date.
    pub fn is_visible(&self, today: Date, rules: &VisibilityRules) -> bool {
        if today < self.start_date {
            return false;
        }
        if self.delete_date.is_some_and(|d| today >= d) {
            return false;
        }
        match self.end_date {
            None => true,
            Some(end) => {
                today
                    <= end
                        .saturating_add(Duration::days(rules.days_after_end(self.plan_type).into()))
            }
        }
    }
}

/// How long a plan stays visible after its end date, per plan type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibilityRules {
    pub cpp_lac_days_after_end: u32,
    pub ucpp_days_after_end: u32,
}

impl Default for VisibilityRules {
    /// As one clinical supplier of the national service shows them: CPP and LAC for 364 days
    /// after the end date, UCPP for 28 (the baby is born and gets its own plan).
    fn default() -> Self {
        Self {
            cpp_lac_days_after_end: 364,
            ucpp_days_after_end: 28,
        }
    }
}

impl VisibilityRules {
    pub fn days_after_end(&self, plan_type: PlanType) -> u32 {
        match plan_type {
            PlanType::ChildProtectionPlan | PlanType::LookedAfterChild => {
                self.cpp_lac_days_after_end
            }
            PlanType::UnbornChildProtectionPlan => self.ucpp_days_after_end,
        }
    }
}

/// Everything CP-IS holds about one NHS number: the plans of every LA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRecord {
    pub plans: Vec<Plan>,
}

impl ChildRecord {
    pub fn visible_plans(&self, today: Date, rules: &VisibilityRules) -> Vec<&Plan> {
        self.plans
            .iter()
            .filter(|p| p.is_visible(today, rules))
            .collect()
    }

    pub fn plans_of(&self, la: &OdsCode) -> Vec<&Plan> {
        self.plans
            .iter()
            .filter(|p| &p.responsible_la.ods_code == la)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    pub fn la(ods: &str) -> ResponsibleLa {
        ResponsibleLa {
            ods_code: OdsCode::parse(ods).unwrap(),
            name: DisplayName::parse(&format!("LA {ods}")).unwrap(),
            office_hours_phone: PhoneNumber::parse("0113 222 4401").unwrap(),
            emergency_duty_team_phone: PhoneNumber::parse("0113 535 0600").unwrap(),
        }
    }

    pub fn plan(plan_type: PlanType, start: Date, end: Option<Date>) -> Plan {
        Plan {
            plan_type,
            case_ref: CaseRef::parse("CASE-1").unwrap(),
            start_date: start,
            end_date: end,
            delete_date: None,
            responsible_la: la("LA1"),
        }
    }

    #[test]
    fn stages_parse_from_their_wire_names_only() {
        for (text, stage) in [
            ("s47_enquiry", Stage::S47Enquiry),
            ("icpc", Stage::Icpc),
            ("looked_after", Stage::LookedAfter),
        ] {
            assert_eq!(Stage::parse(text).unwrap(), stage);
            assert_eq!(serde_json::to_value(stage).unwrap(), text);
        }
        assert!(
            Stage::parse("ICPC")
                .unwrap_err()
                .0
                .contains("unknown stage")
        );
    }

    #[test]
    fn plan_types_round_trip_through_snomed_codes() {
        for t in PlanType::ALL {
            assert_eq!(PlanType::from_snomed_code(t.snomed_code()).unwrap(), t);
        }
        let err = PlanType::from_snomed_code("12345").unwrap_err();
        assert!(err.0.contains("unknown plan type"), "{err}");
    }

    #[test]
    fn active_plan_is_visible_from_its_start() {
        let p = plan(PlanType::ChildProtectionPlan, date!(2026 - 01 - 10), None);
        let rules = VisibilityRules::default();
        assert!(!p.is_visible(date!(2026 - 01 - 09), &rules));
        assert!(p.is_visible(date!(2026 - 01 - 10), &rules));
        assert!(p.is_visible(date!(2030 - 01 - 01), &rules));
    }

    #[test]
    fn ended_cpp_and_lac_stay_visible_for_364_days() {
        let rules = VisibilityRules::default();
        for t in [PlanType::ChildProtectionPlan, PlanType::LookedAfterChild] {
            let p = plan(t, date!(2025 - 01 - 01), Some(date!(2025 - 06 - 30)));
            assert!(p.is_visible(date!(2025 - 06 - 30), &rules));
            assert!(p.is_visible(date!(2026 - 06 - 29), &rules)); // end + 364
            assert!(!p.is_visible(date!(2026 - 06 - 30), &rules));
        }
    }

    #[test]
    fn ended_ucpp_stays_visible_for_28_days() {
        let rules = VisibilityRules::default();
        let p = plan(
            PlanType::UnbornChildProtectionPlan,
            date!(2025 - 01 - 01),
            Some(date!(2025 - 06 - 01)),
        );
        assert!(p.is_visible(date!(2025 - 06 - 29), &rules));
        assert!(!p.is_visible(date!(2025 - 06 - 30), &rules));
    }

    #[test]
    fn visibility_period_is_configurable() {
        let rules = VisibilityRules {
            cpp_lac_days_after_end: 0,
            ucpp_days_after_end: 0,
        };
        let p = plan(
            PlanType::LookedAfterChild,
            date!(2025 - 01 - 01),
            Some(date!(2025 - 06 - 01)),
        );
        assert!(p.is_visible(date!(2025 - 06 - 01), &rules));
        assert!(!p.is_visible(date!(2025 - 06 - 02), &rules));
    }

    #[test]
    fn delete_date_hides_the_plan_even_when_active() {
        let mut p = plan(PlanType::ChildProtectionPlan, date!(2025 - 01 - 01), None);
        p.delete_date = Some(date!(2025 - 03 - 01));
        let rules = VisibilityRules::default();
        assert!(p.is_visible(date!(2025 - 02 - 28), &rules));
        assert!(!p.is_visible(date!(2025 - 03 - 01), &rules));
    }

    #[test]
    fn dates_out_of_order_name_the_field() {
        let mut p = plan(
            PlanType::ChildProtectionPlan,
            date!(2025 - 05 - 01),
            Some(date!(2025 - 04 - 30)),
        );
        assert_eq!(p.check_dates().unwrap_err().0, "end_date");
        p.end_date = None;
        p.delete_date = Some(date!(2025 - 01 - 01));
        assert_eq!(p.check_dates().unwrap_err().0, "delete_date");
        p.delete_date = Some(date!(2025 - 05 - 01));
        assert!(p.check_dates().is_ok());
    }

    #[test]
    fn dates_serialise_as_iso_dates() {
        let p = plan(PlanType::ChildProtectionPlan, date!(2025 - 05 - 01), None);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["start_date"], "2025-05-01");
        assert_eq!(json["plan_type"], "342191000000101");
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
