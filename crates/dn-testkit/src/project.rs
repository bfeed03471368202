//! Generates the project file a fixture is built with for one runtime.
//!
//! The fixture folders hold only sources (and a hand-run csproj); each (fixture, runtime)
//! gets its own copy with a generated project, so restore outputs never mix.

use crate::runtime::{Fixture, Runtime};

/// The text of the generated `.csproj` for `fixture` on `rt`.
pub(crate) fn csproj(fixture: Fixture, rt: Runtime) -> String {
    let sdk = if fixture.is_web() {
        "Microsoft.NET.Sdk.Web"
    } else {
        "Microsoft.NET.Sdk"
    };
    let mut props = vec![
        prop("AssemblyName", fixture.name()),
        prop("TargetFramework", rt.target_framework()),
        prop("Nullable", "disable"),
        prop("ImplicitUsings", "disable"),
        prop("InvariantGlobalization", "true"),
        prop("Deterministic", "true"),
        prop("TreatWarningsAsErrors", "false"),
        // Old frameworks are out of support; that is the point of testing them.
        prop("CheckEolTargetFramework", "false"),
        prop("SatelliteResourceLanguages", "en"),
        prop("GenerateDocumentationFile", "false"),
    ];
    if !fixture.is_web() {
        props.push(prop("OutputType", "Exe"));
        // ConsoleTarget must stay valid C# 8 so it compiles for netcoreapp3.1.
        props.push(prop("LangVersion", "8.0"));
    }
    match rt.pinned_version() {
        None => props.push(prop("UseAppHost", "false")),
        Some(version) => {
            props.push(prop("RuntimeIdentifier", "linux-x64"));
            props.push(prop("SelfContained", "true"));
            props.push(prop("RuntimeFrameworkVersion", version));
        }
    }
    if rt == Runtime::NetCore31 {
        // Otherwise restore asks for an ASP.NET Core 3.1 pack that the feed does not serve.
        props.push(prop("DisableTransitiveFrameworkReferenceDownloads", "true"));
    }
    let mut text = format!("<Project Sdk=\"{sdk}\">\n  <PropertyGroup>\n");
    for p in props {
        text.push_str("    ");
        text.push_str(&p);
        text.push('\n');
    }
    text.push_str("  </PropertyGroup>\n</Project>\n");
    text
}

fn prop(name: &str, value: &str) -> String {
    format!("<{name}>{value}</{name}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_contained_runtimes_pin_the_runtime_pack() {
        let text = csproj(Fixture::Console, Runtime::Net11);
        assert!(text.contains("<TargetFramework>net10.0</TargetFramework>"));
        assert!(text.contains("<RuntimeFrameworkVersion>11.0.0</RuntimeFrameworkVersion>"));
        assert!(text.contains("<SelfContained>true</SelfContained>"));
    }

    #[test]
    fn net10_is_framework_dependent() {
        let text = csproj(Fixture::SampleService, Runtime::Net10);
        assert!(text.starts_with("<Project Sdk=\"Microsoft.NET.Sdk.Web\">"));
        assert!(!text.contains("RuntimeIdentifier"));
        assert!(text.contains("<UseAppHost>false</UseAppHost>"));
    }

    #[test]
    fn netcore31_disables_transitive_framework_downloads() {
        let text = csproj(Fixture::Console, Runtime::NetCore31);
        assert!(text.contains("<TargetFramework>netcoreapp3.1</TargetFramework>"));
        assert!(text.contains("<DisableTransitiveFrameworkReferenceDownloads>true<"));
        assert!(text.contains("<LangVersion>8.0</LangVersion>"));
    }
}
