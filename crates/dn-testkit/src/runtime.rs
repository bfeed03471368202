//! The .NET runtimes and fixture programs the harness knows how to build.

/// A .NET runtime a fixture can be built for and run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// .NET Core 3.1 (3.1.3), self-contained.
    NetCore31,
    /// .NET 8, self-contained.
    Net8,
    /// .NET 9, self-contained.
    Net9,
    /// .NET 10, framework-dependent on the SDK's shared runtime.
    Net10,
    /// .NET 11 (11.0.0), self-contained; compiled against net10.0.
    Net11,
}

impl Runtime {
    /// The runtimes most tests run on.
    pub const MAIN: [Runtime; 3] = [Runtime::Net8, Runtime::Net9, Runtime::Net10];
    /// Every runtime the harness can build for.
    pub const ALL: [Runtime; 5] = [
        Runtime::NetCore31,
        Runtime::Net8,
        Runtime::Net9,
        Runtime::Net10,
        Runtime::Net11,
    ];

    pub fn major(self) -> u32 {
        match self {
            Runtime::NetCore31 => 3,
            Runtime::Net8 => 8,
            Runtime::Net9 => 9,
            Runtime::Net10 => 10,
            Runtime::Net11 => 11,
        }
    }

    /// Short name used in folder names and messages, e.g. "net8".
    pub fn label(self) -> &'static str {
        match self {
            Runtime::NetCore31 => "netcore31",
            Runtime::Net8 => "net8",
            Runtime::Net9 => "net9",
            Runtime::Net10 => "net10",
            Runtime::Net11 => "net11",
        }
    }

    /// The target framework written into the generated project.
    pub(crate) fn target_framework(self) -> &'static str {
        match self {
            Runtime::NetCore31 => "netcoreapp3.1",
            Runtime::Net8 => "net8.0",
            Runtime::Net9 => "net9.0",
            // The SDK is .NET 10: there is no net11.0 framework, so .NET 11 runs a net10.0 build.
            Runtime::Net10 | Runtime::Net11 => "net10.0",
        }
    }

    /// The exact runtime pack version to publish with; `None` means framework-dependent on
    /// the shared runtime installed with the SDK. Pinned to versions the package feed serves.
    pub fn pinned_version(self) -> Option<&'static str> {
        match self {
            Runtime::NetCore31 => Some("3.1.3"),
            Runtime::Net8 => Some("8.0.31"),
            Runtime::Net9 => Some("9.0.20"),
            Runtime::Net10 => None,
            Runtime::Net11 => Some("11.0.0"),
        }
    }

    /// Whether the fixture is published self-contained (carrying its own runtime).
    pub fn self_contained(self) -> bool {
        self.pinned_version().is_some()
    }
}

/// A fixture program under `fixtures/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fixture {
    /// `fixtures/ConsoleTarget`: driven by line commands on stdin.
    Console,
    /// `fixtures/SampleService`: an ASP.NET Core service with diagnostic scenarios.
    SampleService,
}

impl Fixture {
    /// Folder name under `fixtures/` and assembly name.
    pub fn name(self) -> &'static str {
        match self {
            Fixture::Console => "ConsoleTarget",
            Fixture::SampleService => "SampleService",
        }
    }

    pub(crate) fn is_web(self) -> bool {
        matches!(self, Fixture::SampleService)
    }

    /// Whether this fixture can be built for that runtime here.
    pub fn supports(self, rt: Runtime) -> bool {
        // No ASP.NET Core 3.1 runtime pack is available, so the web service needs .NET 8+.
        !(self.is_web() && rt == Runtime::NetCore31)
    }
}
